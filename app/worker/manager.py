"""The run manager: one asyncio task per run_id, never inside a request.

A request only creates or continues a run and reads its events; the task here
loads the run, drives the engine, and records what it yields. Work is claimed,
not assigned: queued runs are taken with `FOR UPDATE SKIP LOCKED` by any worker
with capacity; each running run holds a lease its worker renews; a worker whose
lease ran out (a crash, a kill) is replaced by whoever sweeps first, resuming
the run from its last checkpoint. Writes check the lease, so a worker that lost
its run writes nothing more.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.engine.errors import InputError
from app.engine.events import TERMINAL_EVENTS, RunContinued
from app.engine.loop import Checkpoint, Runner
from app.engine.state import RunState
from app.ids import new_id
from app.runs import repository
from app.runs.repository import NewRun
from app.tables import Run
from app.worker import outcomes
from app.worker.bus import EventBus
from app.worker.notify import Notifier
from app.worker.recorder import Flusher, RunRecorder
from app.worker.writer import EventWriter, LeaseLost

log = logging.getLogger("agentd.worker")

Prepare = Callable[[AsyncSession, Run], Awaitable[RunState]]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


class Admission:
    """A run being created (`RunManager.admitting`): `start()` decides whether it
    starts in this process, taking a run slot for it if there is one."""

    __slots__ = ("_manager", "started")

    def __init__(self, manager: RunManager) -> None:
        self._manager = manager
        self.started = False

    def start(self) -> bool:
        """True (and a slot held until the admission ends) when this process has room."""
        if not self.started:
            self.started = self._manager._take_slot()
        return self.started


class RunManager:
    def __init__(
        self,
        *,
        maker: async_sessionmaker[AsyncSession],
        writer: EventWriter,
        runner: Runner,
        bus: EventBus,
        notifier: Notifier,
        prepare: Prepare,
        lease_seconds: float = 15.0,
        sweep_interval: float = 2.0,
        max_concurrent_runs: int = 512,
        max_attempts: int = 3,
        flush_interval: float = 0.02,
    ) -> None:
        self.maker = maker
        self.writer = writer
        self.runner = runner
        self.bus = bus
        self.notifier = notifier
        self.owner = worker_id()
        self.lease_seconds = lease_seconds
        self.max_concurrent_runs = max_concurrent_runs
        self._prepare = prepare
        self._sweep_interval = sweep_interval
        self._max_attempts = max_attempts
        self.flusher = Flusher(flush_interval)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Told the number of runs in flight or being created whenever it changes
        # (the collector's sizing).
        self.on_load: Callable[[int], None] | None = None
        self._admitting = 0
        self._starting = 0  # slots taken by runs being created to start here
        # How the runs this process executed ended, by status (for /metrics).
        self.ended: collections.Counter[str] = collections.Counter()
        self._cancelling: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._loops: list[asyncio.Task[None]] = []
        self._work = asyncio.Event()
        self._orphans = False
        # Whether a queued run may be waiting anywhere: a run ending here (capacity or a
        # session freed) looks for queued runs only then. Set by every `work:queued`
        # notice (a run was queued, on any replica); cleared by a claim that finds none
        # queued at all, unless a notice came meanwhile (`_queued_notices` moved on).
        self._queued_maybe = True
        self._queued_notices = 0
        notifier.on_control(self._on_control)

    # Lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._heartbeat(), name="agentd-heartbeat"),
            asyncio.create_task(self._sweeper(), name="agentd-sweeper"),
        ]

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop taking work and hand running runs back for another worker."""
        self._closing = True
        for loop in self._loops:
            loop.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
            await self.notifier.control(None, "orphans")  # handed back: take them now
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def in_flight(self) -> int:
        """Runs executing in this process now."""
        return len(self._tasks)

    @property
    def room(self) -> int:
        """Runs this process may still start: its capacity less the runs in flight
        and those being created to start here."""
        return self.max_concurrent_runs - self.in_flight - self._starting

    @property
    def has_capacity(self) -> bool:
        return not self._closing and self.room > 0

    def _take_slot(self) -> bool:
        """Count one more run as about to start here (in `room`), if there is room;
        whoever took it gives it back (`_starting -= 1`) once the run is launched."""
        if not self.has_capacity:
            return False
        self._starting += 1
        return True

    def lease(self) -> dict[str, Any]:
        """The columns that make a run this worker's."""
        return {
            "lease_owner": self.owner,
            "lease_expires_at": repository.lease_until(self.lease_seconds),
        }

    # Starting and cancelling ---------------------------------------------------

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
        self._load_changed()

    @contextlib.contextmanager
    def admitting(self) -> Iterator[Admission]:
        """A run being created in this process: part of the load until the block ends.
        Its `Admission.start()` holds one of the process's run slots for it until
        then, so runs created at the same moment cannot all count on one free slot
        (launch it inside the block)."""
        admission = Admission(self)
        self._admitting += 1
        self._load_changed()
        try:
            yield admission
        finally:
            if admission.started:
                self._starting -= 1
            self._admitting -= 1
            self._load_changed()

    def _load_changed(self) -> None:
        if self.on_load is not None:
            self.on_load(len(self._tasks) + self._admitting)

    async def cancel_run(self, run_id: str) -> None:
        """Request a run's cancel durably; interrupt it here or tell its worker."""
        async with self.maker() as session, session.begin():
            await repository.update_owned(
                session, run_id, None, {"cancel_requested": True}, repository.ACTIVE_STATUSES
            )
            if run_id not in self._tasks:
                await self.notifier.control(session, "cancel", run_id)
        await self.cancel(run_id)

    def request_cancel(self, run_id: str) -> None:
        """`cancel_run` without waiting (a streaming client went away)."""
        self._spawn(self.cancel_run(run_id))

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

    def _on_control(self, kind: str, payload: str) -> None:
        if kind == "cancel" and payload in self._tasks:
            self._spawn(self.cancel(payload))
        elif kind == "work":
            if payload == "queued":
                self._queued_maybe = True
                self._queued_notices += 1
            if self._queued_maybe:
                self._work.set()
        elif kind == "orphans":
            self._orphans = True
            self._work.set()

    def _on_done(self, run_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.pop(run_id, None)
        self._load_changed()
        if task.cancelled() and run_id in self._cancelling and not self._closing:
            # Cancelled before its first step ran: nobody recorded the cancel yet.
            self._spawn(self._cancel_unstarted(run_id))
        self._cancelling.discard(run_id)
        if self._queued_maybe:
            self._work.set()  # capacity freed, and the session may have a queued run

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # Executing -------------------------------------------------------------------

    async def _execute(
        self, run_id: str, resumed: bool, preloaded: tuple[NewRun, RunState] | None
    ) -> None:
        if preloaded is not None:
            await self._run(*preloaded, resumed)
            return
        async with self.maker() as session:
            found = await repository.get(session, run_id)
            if found is None or found.status != "running" or found.lease_owner != self.owner:
                return
            run = found
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
            last_seq=run.last_seq,
            writer=self.writer,
            channel=channel,
            owner=self.owner,
            notifier=self.notifier,
            flusher=self.flusher,
        )
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
            await self._drive(state, recorder, skip_start=run.last_seq > 0)
        except asyncio.CancelledError:
            await recorder.drain()
            recorder.discard_endings()
            if self._closing and run_id not in self._cancelling:
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
        finally:
            self.bus.close(channel)
            if state.status != "running":  # not a run handed back or lost to another worker
                self.ended[state.status] += 1

    async def _drive(self, state: RunState, recorder: RunRecorder, *, skip_start: bool) -> None:
        """Record what the engine yields. A checkpoint's state is written in the same
        transaction as the next event (the one announcing it), never after it; a
        final checkpoint's in the transaction that records the run's end."""
        checkpoint = False
        async with contextlib.aclosing(self.runner.stream(state)) as stream:
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
            run = await repository.get(session, run_id)
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

    # Claiming ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _slots(self) -> Iterator[Callable[[], bool]]:
        """`take()` holds one run slot (False when there is no room), as for a run
        being created, until the block ends: runs created or claimed meanwhile
        cannot count on the same slots. Launch inside the block."""
        held = 0

        def take() -> bool:
            nonlocal held
            if not self._take_slot():
                return False
            held += 1
            return True

        try:
            yield take
        finally:
            self._starting -= held

    async def claim_queued(self) -> int:
        """Start queued runs while this worker has capacity; returns how many."""
        room = self.room
        if room <= 0 or self._closing:
            return 0
        notices = self._queued_notices
        claimed: list[str] = []
        with self._slots() as take_slot:
            async with self.maker() as session, session.begin():
                for run_id, session_id in await repository.claimable_queued(session, room):
                    if not take_slot():
                        break  # runs created meanwhile took the room
                    if not await repository.acquire_session(session, session_id, run_id):
                        continue
                    values = {"status": "running", "started_at": utcnow(), **self.lease()}
                    values["attempt"] = Run.attempt + 1
                    if await repository.transition(session, run_id, ("queued",), values):
                        claimed.append(run_id)
                if (
                    len(claimed) < room
                    and not await repository.any_queued(session)
                    and notices == self._queued_notices  # no run was queued meanwhile
                ):
                    self._queued_maybe = False  # until the next run is queued
            for run_id in claimed:
                self.launch(run_id)
        return len(claimed)

    async def take_over_stale(self) -> int:
        """Resume running runs whose worker's lease ran out."""
        room = self.room
        if room <= 0 or self._closing:
            return 0
        async with self.maker() as session:
            stale = await repository.stale_runs(session, utcnow(), limit=room)
        taken = 0
        for run_id in stale:
            if run_id in self._tasks:
                continue
            with self._slots() as take_slot:
                if not take_slot():
                    break
                async with self.maker() as session, session.begin():
                    until = repository.lease_until(self.lease_seconds)
                    won = await repository.take_over(session, run_id, self.owner, until)
                if won:
                    log.info("run %s: resuming, its worker was lost", run_id)
                    self.launch(run_id, resumed=True)
                    taken += 1
        return taken

    async def sweep(self) -> None:
        await self.take_over_stale()
        await self.claim_queued()

    async def _sweeper(self) -> None:
        """Every `sweep_interval`: orphaned runs, then queued ones. A `work` wake-up
        (a session freed, a run queued, capacity back) looks at queued runs only;
        an `orphans` one (a replica handed its runs back) at both."""
        woken = False
        while True:
            try:
                if woken and not self._orphans:
                    await self.claim_queued()
                else:
                    self._orphans = False
                    await self.sweep()
            except Exception:
                log.warning("sweep failed", exc_info=True)
            woken = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._sweep_interval):
                    await self._work.wait()
                    woken = True
            self._work.clear()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                async with self.maker() as session, session.begin():
                    until = repository.lease_until(self.lease_seconds)
                    await repository.renew_leases(session, self.owner, until)
                    cancels = await repository.cancel_requested_among(session, self.owner)
                for run_id in cancels:
                    if run_id in self._tasks and run_id not in self._cancelling:
                        self._spawn(self.cancel(run_id))
            except Exception:
                log.warning("lease renewal failed", exc_info=True)
