"""The run manager: one asyncio task per run_id, never inside a request.

A request only creates or continues a run and reads its events; the task here
loads the run, drives the engine, and records what it yields. Runs hold a
lease renewed by a heartbeat; a sweeper picks up queued runs whose session is
free and running runs whose worker's lease ran out (a crash or a restart), and
resumes them from their last checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.engine.errors import InputError
from app.engine.events import (
    TERMINAL_EVENTS,
    BaseEvent,
    RunCancelled,
    RunCompleted,
    RunErrorEvent,
    utcnow_iso,
)
from app.engine.loop import Checkpoint, Runner
from app.engine.output import RunError
from app.engine.state import RunState
from app.ids import new_id
from app.runs import repository
from app.tables import Run
from app.worker.bus import EventBus
from app.worker.recorder import LeaseLost, RunRecorder

log = logging.getLogger("agentd.worker")

SpecLoader = Callable[[AsyncSession, Run], Awaitable[RunState]]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


class RunManager:
    def __init__(
        self,
        *,
        maker: async_sessionmaker[AsyncSession],
        runner: Runner,
        bus: EventBus,
        prepare: SpecLoader,
        lease_seconds: float = 15.0,
        sweep_interval: float = 2.0,
        flush_interval: float = 0.02,
    ) -> None:
        self.maker = maker
        self.runner = runner
        self.bus = bus
        self.owner = worker_id()
        self.lease_seconds = lease_seconds
        self._prepare = prepare
        self._sweep_interval = sweep_interval
        self._flush_interval = flush_interval
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancelling: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._loops: list[asyncio.Task[None]] = []

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
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    @property
    def closing(self) -> bool:
        return self._closing

    def is_local(self, run_id: str) -> bool:
        return run_id in self._tasks

    @property
    def active_runs(self) -> int:
        return len(self._tasks)

    # Starting and cancelling -----------------------------------------------------

    def launch(self, run_id: str) -> None:
        """Execute a run this worker has claimed (status running, lease ours)."""
        if self._closing or run_id in self._tasks:
            return
        task = asyncio.create_task(self._execute(run_id), name=f"run-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda t: self._on_done(run_id, t))

    async def cancel_run(self, run_id: str) -> None:
        """Request a running run's cancel (durably), and interrupt it if it runs here."""
        async with self.maker() as session, session.begin():
            await repository.update_owned(
                session, run_id, None, {"cancel_requested": True}, ("running", "queued")
            )
        await self.cancel(run_id)

    def request_cancel(self, run_id: str) -> None:
        """`cancel_run` without waiting (a streaming client went away)."""
        self._spawn(self.cancel_run(run_id))

    async def cancel(self, run_id: str) -> None:
        """Interrupt the local task of a run whose cancel was requested."""
        task = self._tasks.get(run_id)
        if task is None:
            return
        self._cancelling.add(run_id)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(task), timeout=5)

    def _on_done(self, run_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.pop(run_id, None)
        if task.cancelled() and run_id in self._cancelling and not self._closing:
            # Cancelled before its first step ran: nobody recorded the cancel yet.
            self._spawn(self._finish_cancelled(run_id))
        self._cancelling.discard(run_id)

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # Executing -------------------------------------------------------------------

    async def _execute(self, run_id: str) -> None:
        async with self.maker() as session:
            run = await repository.get(session, run_id)
            if run is None or run.status != "running" or run.lease_owner != self.owner:
                return
            try:
                state = await self._prepare(session, run)
            except InputError as exc:
                failure: tuple[str, str] | None = ("user_error", "; ".join(exc.errors))
            except Exception:
                log.exception("run %s: could not be prepared", run_id)
                failure = ("internal_error", "The run could not be started.")
            else:
                failure = None
        if failure is not None:
            await self._fail_before_start(run, *failure)
            self._spawn(self._start_next(run.session_id))
            return
        channel = self.bus.open(run_id, run.last_seq + 1)
        recorder = RunRecorder(
            run_id=run_id,
            last_seq=run.last_seq,
            maker=self.maker,
            channel=channel,
            owner=self.owner,
            flush_interval=self._flush_interval,
        )
        try:
            if run.cancel_requested:
                raise asyncio.CancelledError
            await self._drive(state, recorder)
        except asyncio.CancelledError:
            await recorder.drain()
            if self._closing and run_id not in self._cancelling:
                await self._hand_back(run_id)
                return
            await self._record_cancel(state, recorder)
        except LeaseLost:
            log.warning("run %s: lease lost, another worker owns it", run_id)
            return
        except Exception:
            log.exception("run %s: worker failed", run_id)
            await recorder.drain()
            with contextlib.suppress(Exception):
                await self._record_error(state, recorder)
        finally:
            self.bus.close(channel)
        self._spawn(self._start_next(state.session_id))

    async def _drive(self, state: RunState, recorder: RunRecorder) -> None:
        async for item in self.runner.stream(state):
            if isinstance(item, Checkpoint):
                await recorder.commit(values={"state": state.model_dump(mode="json")})
                continue
            name = item.event
            if name in TERMINAL_EVENTS:
                await self._record_end(state, recorder, item)
                return
            if name == "RunPaused":
                await recorder.commit(
                    item,
                    values=self._outcome_values(state, "paused"),
                    session_work=self._session_work(state, release=True, keep_history=False),
                )
                return
            await recorder.add(item)

    # Recording outcomes ------------------------------------------------------------

    def _outcome_values(self, state: RunState, status: str) -> dict[str, Any]:
        now = utcnow()
        output = state.to_output(updated_at=utcnow_iso())
        output.status = status  # type: ignore[assignment]
        values: dict[str, Any] = {
            "status": status,
            "state": state.model_dump(mode="json"),
            "output": output.model_dump(mode="json"),
            "content": output.content,
            "content_type": output.content_type,
            "error": output.error.model_dump() if output.error else None,
            "metrics": output.metrics.model_dump(mode="json"),
            "last_agent_id": state.last_agent_id,
            "model": state.model,
            "updated_at": now,
        }
        if status != "paused":
            values.update(finished_at=now, lease_owner=None, lease_expires_at=None)
        else:
            values.update(lease_owner=None, lease_expires_at=None)
        return values

    def _session_work(
        self, state: RunState, *, release: bool, keep_history: bool
    ) -> Callable[[AsyncSession], Awaitable[None]]:
        async def work(session: AsyncSession) -> None:
            stored = await repository.get_session(session, state.session_id)
            if stored is not None:
                stored.state = dict(state.session_state)
                stored.updated_at = utcnow()
            if keep_history:
                await repository.add_messages(
                    session, state.session_id, state.run_id, state.new_messages()
                )
            if release:
                await repository.release_session(session, state.session_id, state.run_id)

        return work

    async def _record_end(
        self, state: RunState, recorder: RunRecorder, event: BaseEvent | RunCompleted
    ) -> None:
        status = {"RunCompleted": "completed", "RunError": "error", "RunCancelled": "cancelled"}[
            event.event
        ]
        await recorder.commit(
            event,
            values=self._outcome_values(state, status),
            session_work=self._session_work(
                state, release=True, keep_history=status == "completed"
            ),
        )

    async def _record_cancel(self, state: RunState, recorder: RunRecorder) -> None:
        state.status = "cancelled"
        event = RunCancelled(
            run_id=state.run_id,
            session_id=state.session_id,
            agent_id=state.active_agent_id,
            reason="cancelled by request",
        )
        await self._record_end(state, recorder, event)

    async def _record_error(self, state: RunState, recorder: RunRecorder) -> None:
        state.status = "error"
        state.error = RunError(code="internal_error", message="The run failed unexpectedly.")
        event = RunErrorEvent(
            run_id=state.run_id,
            session_id=state.session_id,
            agent_id=state.active_agent_id,
            error=state.error,
            content=state.error.message,
        )
        await self._record_end(state, recorder, event)

    async def _fail_before_start(self, run: Run, code: str, message: str) -> None:
        """A run that cannot even start (its agent is gone, its input no longer fits)."""
        error = RunErrorEvent(
            run_id=run.id,
            session_id=run.session_id,
            agent_id=run.agent_id,
            error=RunError(code=code, message=message),
            content=message,
        )
        channel = self.bus.open(run.id, run.last_seq + 1)
        recorder = RunRecorder(
            run_id=run.id,
            last_seq=run.last_seq,
            maker=self.maker,
            channel=channel,
            owner=self.owner,
        )

        async def release(session: AsyncSession) -> None:
            await repository.release_session(session, run.session_id, run.id)

        try:
            await recorder.commit(
                error,
                values={
                    "status": "error",
                    "error": error.error.model_dump(),
                    "finished_at": utcnow(),
                    "lease_owner": None,
                    "lease_expires_at": None,
                },
                session_work=release,
            )
        finally:
            self.bus.close(channel)

    async def _finish_cancelled(self, run_id: str) -> None:
        async with self.maker() as session:
            run = await repository.get(session, run_id)
        if run is None or run.status != "running":
            return
        await finish_without_worker(self.maker, self.bus, run, owner=self.owner)

    async def _hand_back(self, run_id: str) -> None:
        """Shutting down: leave the run running with an expired lease for the next worker."""
        async with self.maker() as session, session.begin():
            await repository.update_owned(
                session, run_id, self.owner, {"lease_owner": None, "lease_expires_at": utcnow()}
            )
        log.info("run %s handed back", run_id)

    # Claiming ------------------------------------------------------------------------

    async def claim(self, run_id: str, from_statuses: tuple[str, ...]) -> bool:
        """Take a run for this worker (status becomes running, lease ours)."""
        async with self.maker() as session, session.begin():
            return await repository.transition(
                session,
                run_id,
                from_statuses,
                {
                    "status": "running",
                    "lease_owner": self.owner,
                    "lease_expires_at": repository.lease_until(self.lease_seconds),
                    "started_at": utcnow(),
                    "attempt": Run.attempt + 1,
                },
            )

    async def _start_next(self, session_id: str) -> None:
        """When a session's active run ended, start its oldest queued run."""
        if self._closing:
            return
        async with self.maker() as session, session.begin():
            run_id = await repository.next_queued(session, session_id)
            if run_id is None or not await repository.acquire_session(session, session_id, run_id):
                return
            claimed = await repository.transition(
                session,
                run_id,
                ("queued",),
                {
                    "status": "running",
                    "lease_owner": self.owner,
                    "lease_expires_at": repository.lease_until(self.lease_seconds),
                    "started_at": utcnow(),
                    "attempt": Run.attempt + 1,
                },
            )
            if not claimed:
                await repository.release_session(session, session_id, run_id)
                return
        self.launch(run_id)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                async with self.maker() as session, session.begin():
                    await repository.renew_leases(
                        session, self.owner, repository.lease_until(self.lease_seconds)
                    )
            except Exception:
                log.warning("lease renewal failed", exc_info=True)

    async def _sweeper(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.warning("sweep failed", exc_info=True)
            await asyncio.sleep(self._sweep_interval)

    async def sweep(self) -> None:
        """Resume runs whose worker vanished; start queued runs whose session is free."""
        async with self.maker() as session:
            stale = await repository.stale_runs(session, utcnow(), limit=50)
            queued = await repository.startable_queued(session, limit=50)
        for run_id in stale:
            if run_id in self._tasks:
                continue
            async with self.maker() as session, session.begin():
                taken = await repository.take_over(
                    session, run_id, self.owner, repository.lease_until(self.lease_seconds)
                )
            if taken:
                log.info("run %s: resuming after its worker was lost", run_id)
                self.launch(run_id)
        for _run_id, session_id in queued:
            await self._start_next(session_id)


async def finish_without_worker(
    maker: async_sessionmaker[AsyncSession],
    bus: EventBus,
    run: Run,
    *,
    owner: str | None,
    statuses: tuple[str, ...] | None = None,
) -> None:
    """Record RunCancelled for a run no worker is executing (queued or paused);
    raises LeaseLost when its status is no longer one of `statuses`."""
    event = RunCancelled(
        run_id=run.id,
        session_id=run.session_id,
        agent_id=run.last_agent_id or run.agent_id,
        reason="cancelled by request",
    )
    channel = bus.open(run.id, run.last_seq + 1)
    recorder = RunRecorder(
        run_id=run.id,
        last_seq=run.last_seq,
        maker=maker,
        channel=channel,
        owner=owner,
        expect_statuses=statuses,
    )
    output = dict(run.output or {})
    output.update(status="cancelled")

    async def release(session: AsyncSession) -> None:
        await repository.release_session(session, run.session_id, run.id)

    try:
        await recorder.commit(
            event,
            values={
                "status": "cancelled",
                "output": output or None,
                "finished_at": utcnow(),
                "lease_owner": None,
                "lease_expires_at": None,
            },
            session_work=release,
        )
    finally:
        bus.close(channel)
