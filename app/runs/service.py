"""The run service: the one surface through which every protocol starts and
watches runs.

Native routes and every protocol adapter call these methods and nothing
beneath them: `create`, `continue_`, `cancel`, `get`/`output`/`list`,
`follow` (a run's stored events from a seq: replay, then the live tail, on
any replica) and `wait` (follow to the end, then the RunOutput). An adapter is
then only a translation of its requests into these calls and of the stored
events into its wire format; storing, launching, cancelling and resuming runs
happen here and in the worker, the same for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.agents.resolver import StoredAgents
from app.db import utcnow
from app.engine import jsontext
from app.engine.errors import InputError
from app.engine.loop import Runner
from app.engine.output import RunOutput
from app.engine.state import RunState
from app.errors import RunNotActive, RunNotFound, RunNotPaused, SessionBusy, ShuttingDown
from app.runs import repository
from app.runs.creation import Creator, Started
from app.runs.grouping import RunCreations
from app.runs.records import NO_EXTRAS, input_failed, output_of
from app.runs.schemas import RunContinue, RunCreate, RunExtras
from app.sessions import repository as sessions
from app.tables import Run
from app.worker import outcomes, store
from app.worker.bus import Frame
from app.worker.following import follow
from app.worker.manager import RunManager
from app.worker.writer import LeaseLost


class RunService:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        maker: async_sessionmaker[AsyncSession],
        manager: RunManager,
        runner: Runner,
        agents: StoredAgents,
    ) -> None:
        self.maker = maker
        self.manager = manager
        self.runner = runner
        # Runs created at one moment are stored in one transaction.
        self.creations = RunCreations(engine.connect)
        self._creator = Creator(engine.connect, manager, runner, agents, self.creations)

    # Starting ------------------------------------------------------------------

    async def create(
        self, agent_id: str, body: RunCreate, extras: RunExtras = NO_EXTRAS
    ) -> Started:
        """Store a new run and start it (here when there is room, else on whichever
        replica claims it first); the run it interrupts is cancelled first. Raises
        AgentNotFound, ValidationFailed, SessionBusy or RunExists, having stored
        nothing. `extras` is what a protocol adapter adds (see `RunExtras`)."""
        manager = self.manager
        # Stored before anything is awaited on it: no connection held meanwhile.
        with manager.admitting() as admission:
            started = await self._creator.create(agent_id, body, admission, extras)
            if started.launch:
                manager.launch(started.run.id, run=started.run, state=started.state)
        if started.interrupt is not None:
            await manager.cancel(started.interrupt)
        return started

    async def continue_(self, run_id: str, body: RunContinue) -> Run:
        """Answer a paused run's requirements and resume it from its stored state;
        returns the run as it was paused (its `last_seq` is where the answer's
        events begin). Raises RunNotFound, RunNotPaused, ValidationFailed or
        SessionBusy."""
        async with self.maker() as session, session.begin():
            run = await self._get(session, run_id)
            if run.status != "paused" or run.state is None:
                raise RunNotPaused(
                    f"Run {run_id!r} is {run.status}.", extra={"run_status": run.status}
                )
            state = RunState.model_validate(run.state)
            decisions = [decision.model_dump(exclude_unset=True) for decision in body.tools]
            try:
                resumed = self.runner.apply_decisions(state, decisions)
            except InputError as exc:
                raise input_failed(exc, "tools") from None
            resumed.streaming = body.watched
            # The session is not held while a run is paused: start from its state now.
            stored = await sessions.get_session(session, run.session_id)
            if stored is not None:
                resumed.session_state = dict(stored.state)
            if not await store.acquire_session(session, run.session_id, run.id):
                active = await sessions.active_run_of(session, run.session_id)
                raise SessionBusy(
                    f"Session {run.session_id!r} has an active run ({active}).",
                    extra={"active_run_id": active},
                )
            moved = await store.transition(
                session,
                run_id,
                ("paused",),
                {
                    "status": "running",
                    "state": resumed.model_dump(mode="json"),
                    # `attempt` counts the run's starts by a worker: a continue is
                    # not one (worker losses are what MAX_RUN_ATTEMPTS bounds).
                    **self.manager.lease(),
                    "updated_at": utcnow(),
                },
            )
            if not moved:  # a concurrent continue or cancel got there first
                raise RunNotPaused(f"Run {run_id!r} is no longer paused.")
        self.manager.launch(run_id)
        return run

    # Cancelling ----------------------------------------------------------------

    async def cancel(self, run_id: str) -> Run:
        """Cancel a queued, running or paused run, wherever it executes; returns the
        run as it is then. Idempotent once cancelled; raises RunNotFound, or
        RunNotActive for a run that completed or failed (also when it did so
        before the cancel reached it)."""
        run = await self.get(run_id)
        _check_cancellable(run)
        if run.status in ("queued", "paused"):
            # LeaseLost: it moved on meanwhile (started, continued, ended); read it again.
            with contextlib.suppress(LeaseLost):
                manager = self.manager
                await outcomes.cancel_without_worker(
                    manager.writer,
                    manager.bus,
                    manager.notifier,
                    run,
                    owner=None,
                    statuses=(run.status,),
                )
        run = await self.get(run_id)
        _check_cancellable(run)
        if run.status == "running":
            await self.manager.cancel_run(run_id)
            run = await self.get(run_id)
            # It ended on its own before the cancel reached it: nothing was cancelled.
            _check_cancellable(run)
        return run

    def request_cancel(self, run_id: str) -> None:
        """Cancel without waiting (a client that watched the run went away)."""
        self.manager.request_cancel(run_id)

    # Reading -------------------------------------------------------------------

    async def get(self, run_id: str) -> Run:
        async with self.maker() as session:
            return await self._get(session, run_id)

    async def output(self, run_id: str) -> RunOutput:
        return output_of(await self.get(run_id))

    async def list_runs(
        self,
        *,
        limit: int,
        before: str | None,
        agent_id: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        status: str | None = None,
    ) -> list[Run]:
        """Runs, newest first."""
        async with self.maker() as session:
            return await repository.list_page(
                session,
                limit=limit,
                before=before,
                agent_id=agent_id,
                session_id=session_id,
                user_id=user_id,
                status=status,
            )

    def follow(
        self,
        run_id: str,
        after: int,
        *,
        stopping: Callable[[], bool] = lambda: False,
        idle: float | None = None,
    ) -> AsyncIterator[list[Frame]]:
        """Batches of the run's stored events after seq `after`, as they are stored,
        until the run pauses or ends (or the process shuts down, or `stopping()`);
        with `idle`, an empty batch after each `idle` seconds without events."""
        return follow(
            run_id, after, manager=self.manager, maker=self.maker, stopping=stopping, idle=idle
        )

    async def wait(self, run_id: str, after: int, *, cancel_if_abandoned: bool) -> dict[str, Any]:
        """Follow the run until it pauses or ends; its RunOutput as JSON. With
        `cancel_if_abandoned`, a caller that stops waiting cancels the run."""
        last: Frame | None = None
        try:
            async for batch in self.follow(run_id, after):
                last = batch[-1]
        except asyncio.CancelledError:
            if cancel_if_abandoned:
                self.request_cancel(run_id)
            raise
        if last is not None and last.event == "RunCompleted":
            # The event carries the whole RunOutput as stored: no need to read it back.
            output: dict[str, Any] = jsontext.loads(last.data)
            output.pop("event", None)
            output.pop("seq", None)
            return output
        run = await self.output(run_id)
        if run.status in ("queued", "running") and self.manager.closing:
            # This process stops before the run ended: another replica takes it over.
            raise ShuttingDown(
                f"Run {run_id!r} continues on another replica: follow "
                f"/v1/runs/{run_id}/events, or read /v1/runs/{run_id} later.",
                extra={"run_id": run_id},
            )
        return run.model_dump(mode="json")

    @staticmethod
    async def _get(session: AsyncSession, run_id: str) -> Run:
        run = await store.get(session, run_id)
        if run is None:
            raise RunNotFound(f"No run {run_id!r}.")
        return run


def _check_cancellable(run: Run) -> None:
    if run.status in ("completed", "error"):
        raise RunNotActive(
            f"Run {run.id!r} already ended as {run.status}.", extra={"run_status": run.status}
        )
