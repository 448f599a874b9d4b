"""Executing runs: one asyncio task per run_id, never inside a request.

The task loads the run (or takes the row and state its creator handed over),
drives the engine, and records what the engine yields through a `RunRecorder`.
A run ends recorded as completed, error, cancelled or paused; a run whose
process is shutting down is handed back for another worker; a run whose lease
another worker took writes nothing more (`LeaseLost`). Each execution of a run
is traced (the engine's `RunTrace`, started and ended here), and every log
line written meanwhile carries the run's ids and its trace's (`app.logs`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import principal
from app.engine.errors import InputError
from app.engine.events import TERMINAL_EVENTS, RunContinued
from app.engine.loop import Checkpoint, Runner
from app.engine.state import RunState
from app.engine.tracing import RunTrace
from app.logs import handling
from app.notify import Notifier
from app.tables import Run
from app.worker import outcomes, store
from app.worker.bus import EventBus
from app.worker.capacity import Capacity
from app.worker.recorder import Flusher, RunRecorder
from app.worker.store import NewRun
from app.worker.writer import EventWriter, LeaseLost

log = logging.getLogger("agentd.worker")

Prepare = Callable[[AsyncSession, Run], Awaitable[RunState]]


class RunExecutor:
    def __init__(
        self,
        *,
        maker: async_sessionmaker[AsyncSession],
        writer: EventWriter,
        runner: Runner,
        bus: EventBus,
        notifier: Notifier,
        capacity: Capacity,
        prepare: Prepare,
        owner: str,
        max_attempts: int,
        flush_interval: float,
    ) -> None:
        self.maker = maker
        self.writer = writer
        self.runner = runner
        self.bus = bus
        self.notifier = notifier
        self.capacity = capacity
        self.owner = owner
        self.flusher = Flusher(flush_interval)
        self._prepare = prepare
        self._max_attempts = max_attempts
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancelling: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        # How the runs this process executed ended, by status (for /metrics).
        self.ended: collections.Counter[str] = collections.Counter()
        # Called when a run's task ends (capacity freed, its session maybe too).
        self.on_run_done: Callable[[], None] = lambda: None

    def executes(self, run_id: str) -> bool:
        return run_id in self._tasks

    def launch(
        self,
        run_id: str,
        *,
        resumed: bool = False,
        run: NewRun | None = None,
        state: RunState | None = None,
    ) -> None:
        """Execute a run this worker has claimed (status running, lease ours).
        A fresh run may come with its row and its starting state, saving a reload."""
        if run_id in self._tasks:
            return
        preloaded = (run, state) if run is not None and state is not None else None
        if preloaded is not None:
            # Open the channel now: the request about to follow the run finds it.
            self.bus.open(run_id, preloaded[0].last_seq + 1)
        task = asyncio.create_task(self._execute(run_id, resumed, preloaded), name=f"run-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda t: self._on_done(run_id, t))
        self.capacity.launched()

    async def cancel(self, run_id: str) -> None:
        """Interrupt this process's task of a run, and wait for it to record the end."""
        task = self._tasks.get(run_id)
        if task is None:
            return
        if run_id not in self._cancelling:  # cancel once: a second cancel would cut
            self._cancelling.add(run_id)  # the recording of the first one short
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(task), timeout=5)

    def spawn_cancel(self, run_id: str) -> None:
        """`cancel` without waiting, unless a cancel of that run is under way."""
        if run_id in self._tasks and run_id not in self._cancelling:
            self.spawn(self.cancel(run_id))

    def spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stop(self, grace: float) -> bool:
        """Cancel every run task (each hands its run back) and wait up to `grace`;
        True when there were any."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        return bool(tasks)

    def _on_done(self, run_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.pop(run_id, None)
        self.capacity.finished()
        if task.cancelled() and run_id in self._cancelling and not self.capacity.closing:
            # Cancelled before its first step ran: nobody recorded the cancel yet.
            self.spawn(self._cancel_unstarted(run_id))
        self._cancelling.discard(run_id)
        self.on_run_done()

    async def _execute(
        self, run_id: str, resumed: bool, preloaded: tuple[NewRun, RunState] | None
    ) -> None:
        # This task reads what the run reads (its agents, its session) in the run's
        # tenant, whoever launched it.
        if preloaded is not None:
            principal.enter(principal.of_run(preloaded[0].tenant_id))
            await self._run(*preloaded, resumed)
            return
        async with self.maker() as session:
            found = await store.get(session, run_id)
            if found is None or found.status != "running" or found.lease_owner != self.owner:
                return
            run = found
            principal.enter(principal.of_run(run.tenant_id))
            failure: tuple[str, str] | None = None
            if resumed and run.attempt > self._max_attempts:
                failure = ("worker_lost", f"The run's worker was lost {run.attempt - 1} times.")
            else:
                try:
                    state = await self._prepare(session, run)
                except InputError as exc:
                    failure = ("user_error", "; ".join(exc.errors))
                except Exception:
                    log.exception("run %s: could not be prepared", run_id)
                    failure = ("internal_error", "The run could not be started.")
        if failure is not None:
            await outcomes.fail_unstarted(self.writer, self.bus, self.notifier, run, *failure)
            return
        await self._run(run, state, resumed)

    async def _run(self, run: Run | NewRun, state: RunState, resumed: bool) -> None:
        run_id = run.id
        opened = self.bus.get(run_id)
        if opened is not None and opened.first_seq == run.last_seq + 1 and not opened.closed:
            channel = opened  # opened by `launch`
        else:
            channel = self.bus.open(run_id, run.last_seq + 1)
        recorder = RunRecorder(
            run_id=run_id,
            tenant_id=run.tenant_id,
            last_seq=run.last_seq,
            writer=self.writer,
            channel=channel,
            owner=self.owner,
            notifier=self.notifier,
            flusher=self.flusher,
        )
        trace = self.runner.trace(state)
        try:
            with handling(state, trace.trace_id, trace.span_id):
                await self._record(run, state, trace, recorder, resumed)
        finally:
            trace.end(state)
            self.bus.close(channel)
            if state.status != "running":  # not a run handed back or lost to another worker
                self.ended[state.status] += 1

    async def _record(
        self,
        run: Run | NewRun,
        state: RunState,
        trace: RunTrace,
        recorder: RunRecorder,
        resumed: bool,
    ) -> None:
        run_id = run.id
        try:
            if run.cancel_requested:
                raise asyncio.CancelledError
            if resumed and run.last_seq > 0:
                await recorder.add(
                    RunContinued(
                        run_id=run_id,
                        session_id=run.session_id,
                        agent_id=state.active_agent_id,
                        reason="resumed",
                    )
                )
            await self._drive(state, trace, recorder, skip_start=run.last_seq > 0)
        except asyncio.CancelledError:
            await recorder.drain()
            recorder.discard_endings()
            if self.capacity.closing and run_id not in self._cancelling:
                await outcomes.hand_back(self.maker, run_id, self.owner)
                return
            await outcomes.record_cancel(state, recorder)
        except LeaseLost:
            log.warning("run %s: lease lost, another worker owns it", run_id)
        except Exception:
            log.exception("run %s: worker failed", run_id)
            await recorder.drain()
            recorder.discard_endings()
            with contextlib.suppress(Exception):
                await outcomes.record_error(state, recorder)

    async def _drive(
        self, state: RunState, trace: RunTrace, recorder: RunRecorder, *, skip_start: bool
    ) -> None:
        """Record what the engine yields. A checkpoint's state is written in the same
        transaction as the next event (the one announcing it), never after it; a
        final checkpoint's in the transaction that records the run's end."""
        checkpoint = False
        async with contextlib.aclosing(self.runner.stream(state, trace)) as stream:
            async for item in stream:
                if isinstance(item, Checkpoint):
                    # A final one is written with the run's end, a moment later.
                    checkpoint = not item.final
                    continue
                name = item.event
                if name == "RunStarted" and skip_start:
                    continue  # a fresh restart of a run whose first attempt announced it
                if name in TERMINAL_EVENTS or name == "RunPaused":
                    await outcomes.record_end(state, recorder, item)
                    return
                if checkpoint:
                    await recorder.commit(item, values={"state": state.model_dump(mode="json")})
                    checkpoint = False
                else:
                    await recorder.add(item)

    async def _cancel_unstarted(self, run_id: str) -> None:
        async with self.maker() as session:
            run = await store.get(session, run_id)
        if run is not None and run.status == "running":
            with contextlib.suppress(LeaseLost):
                await outcomes.cancel_without_worker(
                    self.writer,
                    self.bus,
                    self.notifier,
                    run,
                    owner=self.owner,
                    statuses=("running",),
                )
