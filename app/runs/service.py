"""The run service: the one surface through which every protocol starts and
watches runs.

Native routes and every protocol adapter call these methods and nothing
beneath them: `create`, `continue_`, `cancel`, `delete`, `get`/`output`/`list`,
`follow` (a run's stored events from a seq: replay, then the live tail, on
any replica) and `wait` (follow to the end, then the RunOutput). An adapter is
then only a translation of its requests into these calls and of the stored
events into its wire format; storing, launching, cancelling and resuming runs
happen here and in the worker, the same for all of them.

Every method acts for the principal in effect (`app.principal`): runs are
created in its tenant, with its user when it has one (another `user_id` in the
body is 403), and a run outside its reach is not found, as if it did not
exist. Creating, continuing, cancelling and deleting need the `runs:write`
scope here too, so a protocol without routes of its own is held to it. `follow`, `wait`
and `request_cancel` take a run id (checked) or a run this service answered
(already checked: a stream right after a create costs no read).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import principal
from app.agents.resolver import StoredAgents
from app.db import utcnow
from app.engine import jsontext
from app.engine.errors import InputError
from app.engine.loop import Runner
from app.engine.output import TERMINAL_STATUSES, RunOutput
from app.engine.state import RunState
from app.errors import (
    Forbidden,
    RunExists,
    RunNotActive,
    RunNotFound,
    RunNotPaused,
    SessionBusy,
    ShuttingDown,
)
from app.runs import idempotency, repository
from app.runs.creation import Creator, Fingerprinted, RunIdTaken, Started
from app.runs.grouping import RunCreations
from app.runs.records import NO_EXTRAS, input_failed, output_of
from app.runs.schemas import RUN_ID_PATTERN, RunContinue, RunCreate, RunExtras
from app.sessions import repository as sessions
from app.tables import Run
from app.worker import outcomes, store
from app.worker.bus import Frame
from app.worker.following import follow
from app.worker.manager import RunManager
from app.worker.store import NewRun
from app.worker.writer import LeaseLost

RUN_ID = re.compile(RUN_ID_PATTERN)


@dataclass(frozen=True, slots=True)
class Continued:
    """A continued run: its answer's events are those after `last_seq`."""

    id: str
    session_id: str
    last_seq: int


# A run this service answered (its reach checked).
Answered = Run | NewRun | Continued
# That, or a run id to check.
RunRef = str | Answered


class RunService:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        maker: async_sessionmaker[AsyncSession],
        manager: RunManager,
        runner: Runner,
        agents: StoredAgents,
        server_stopping: Callable[[], bool] = lambda: False,
        max_active_runs: int | None = None,
    ) -> None:
        self.maker = maker
        # Whether the server is shutting down: a blocking wait ends then.
        self.server_stopping = server_stopping
        self.manager = manager
        self.runner = runner
        self._checking: set[asyncio.Task[None]] = set()  # cancels of ids being checked
        # Runs created at one moment are stored in one transaction.
        self.creations = RunCreations(engine.connect)
        self._creator = Creator(
            engine.connect, manager, runner, agents, self.creations, max_active_runs
        )

    # Starting ------------------------------------------------------------------

    async def create(
        self,
        agent_id: str,
        body: RunCreate,
        extras: RunExtras = NO_EXTRAS,
        *,
        idempotency_key: str | None = None,
    ) -> Started:
        """Store a new run and start it (here when there is room, else on whichever
        replica claims it first); the run it interrupts is cancelled first. Raises
        AgentNotFound, ValidationFailed, SessionBusy or RunExists, having stored
        nothing. `extras` is what a protocol adapter adds (see `RunExtras`). A
        create sent again (the same `run_id`, or `idempotency_key`) answers the run
        it started (not launched) and starts nothing: a key is looked up first, a
        run id is found taken when the run is stored."""
        who = principal.require("runs:write")
        if who.user_id is not None and body.user_id != who.user_id:
            if body.user_id is not None:
                raise Forbidden(f"This credential acts for user {who.user_id!r} only.")
            body = body.model_copy(update={"user_id": who.user_id})
        if body.run_id is not None:
            extras = extras.model_copy(update={"run_id": body.run_id})
        request: Fingerprinted | None = None
        if extras.run_id is not None or idempotency_key is not None:
            digest = idempotency.fingerprint("create", agent_id, body, extras)
            request = Fingerprinted(digest, idempotency_key)
        if idempotency_key is not None and request is not None:
            replay = await self._replayed_create(extras.run_id, request)
            if replay is not None:
                return replay
        manager = self.manager
        try:
            # Stored before anything is awaited on it: no connection held meanwhile.
            with manager.admitting() as admission:
                started = await self._creator.create(
                    agent_id, body, admission, extras, request, who=who
                )
                if started.launch:
                    manager.launch(started.run.id, run=started.run, state=started.state)
        except (IntegrityError, RunIdTaken):
            if request is None:
                raise
            # Sent before (this run id is taken), or the same request, on another
            # replica, stored it first.
            replay = await self._replayed_create(extras.run_id, request)
            if replay is None:
                raise RunExists("The run's id or idempotency key was just taken.") from None
            return replay
        if started.interrupt is not None:
            await manager.cancel(started.interrupt)
        return started

    async def _replayed_create(self, run_id: str | None, request: Fingerprinted) -> Started | None:
        async with self.maker() as session, session.begin():
            replay = await idempotency.find_create(
                session, run_id, request.idempotency_key, request.fingerprint
            )
        return None if replay is None else Started(NewRun.of_run(replay.run), launch=False)

    async def continue_(
        self, run_id: str, body: RunContinue, *, idempotency_key: str | None = None
    ) -> Continued:
        """Answer a paused run's requirements and resume it from its stored state.
        Raises RunNotFound, RunNotPaused, ValidationFailed or SessionBusy. The same
        continue sent again with its `idempotency_key` answers that continuation."""
        principal.require("runs:write")
        digest = ""
        if idempotency_key is not None:
            digest = idempotency.fingerprint("continue", run_id, body)
            async with self.maker() as session, session.begin():
                replay = await idempotency.find_continue(session, idempotency_key, digest)
            if replay is not None:
                return Continued(replay.run.id, replay.run.session_id, replay.after)
        try:
            continued = await self._continue(run_id, body, idempotency_key, digest)
        except IntegrityError:
            if idempotency_key is None:
                raise
            async with self.maker() as session, session.begin():
                replay = await idempotency.find_continue(session, idempotency_key, digest)
            if replay is None:
                raise RunNotPaused(f"Run {run_id!r} is no longer paused.") from None
            return Continued(replay.run.id, replay.run.session_id, replay.after)
        self.manager.launch(run_id)
        return continued

    async def _continue(
        self, run_id: str, body: RunContinue, idempotency_key: str | None, digest: str
    ) -> Continued:
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
            if not await store.acquire_session(session, run.tenant_id, run.session_id, run.id):
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
            if idempotency_key is not None:
                await repository.store_idempotency_key(
                    session, idempotency_key, digest, run_id, run.last_seq
                )
        return Continued(run.id, run.session_id, run.last_seq)

    # Cancelling ----------------------------------------------------------------

    async def cancel(self, run_id: str) -> Run:
        """Cancel a queued, running or paused run, wherever it executes; returns the
        run as it is then. Idempotent once cancelled; raises RunNotFound, or
        RunNotActive for a run that completed or failed (also when it did so
        before the cancel reached it)."""
        principal.require("runs:write")
        run = await self._get_or_keep_cancel(run_id)
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

    async def _get_or_keep_cancel(self, run_id: str) -> Run:
        """The run; or, when no run has that id yet but a client may choose it, the
        cancel is kept for a run created with it soon (and RunNotFound raised)."""
        try:
            return await self.get(run_id)
        except RunNotFound:
            if RUN_ID.fullmatch(run_id) is None:
                raise
        async with self.maker() as session, session.begin():
            await repository.lock_run_id(session, run_id)
            # Created meanwhile, or taken in another tenant (run ids are global).
            taken = await store.get(session, run_id) is not None
            run = await repository.get_visible(session, run_id) if taken else None
            if not taken:
                await repository.keep_cancel(session, run_id)
        if run is None:
            raise RunNotFound(
                f"No run {run_id!r}; a run created with this id in the next ten minutes "
                "ends cancelled."
            )
        return run

    async def delete(self, run_id: str) -> None:
        """Forget a run: cancelled first while it is active, then deleted with its
        events and its part of the session's history. Raises RunNotFound."""
        principal.require("runs:write")
        run = await self.get(run_id)
        if run.status not in TERMINAL_STATUSES:
            with contextlib.suppress(RunNotActive):  # it ended meanwhile
                await self.cancel(run_id)
        async with self.maker() as session, session.begin():
            await repository.delete_run(session, run_id)

    def request_cancel(self, run: RunRef) -> None:
        """Cancel without waiting (a client that watched the run went away)."""
        if not isinstance(run, str):
            self.manager.request_cancel(run.id)
            return

        async def checked() -> None:
            with contextlib.suppress(RunNotFound):
                self.manager.request_cancel((await self.get(run)).id)

        task = asyncio.ensure_future(checked())
        self._checking.add(task)
        task.add_done_callback(self._checking.discard)

    # Reading -------------------------------------------------------------------

    async def get(self, run_id: str) -> Run:
        """The run (RunNotFound when it is outside the principal's reach)."""
        async with self.maker() as session:
            return await self._get(session, run_id)

    async def output(self, run: RunRef) -> RunOutput:
        return output_of(await self.get(run if isinstance(run, str) else run.id))

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
        run: RunRef,
        after: int,
        *,
        stopping: Callable[[], bool] = lambda: False,
        idle: float | None = None,
    ) -> AsyncGenerator[list[Frame], None]:
        """Batches of the run's stored events after seq `after`, as they are stored,
        until the run pauses or ends (or the process shuts down, or `stopping()`);
        with `idle`, an empty batch after each `idle` seconds without events. A run
        id outside the principal's reach raises RunNotFound on the first batch."""
        if isinstance(run, str):
            return self._follow_checked(run, after, stopping, idle)
        return follow(
            run.id, after, manager=self.manager, maker=self.maker, stopping=stopping, idle=idle
        )

    async def _follow_checked(
        self, run_id: str, after: int, stopping: Callable[[], bool], idle: float | None
    ) -> AsyncGenerator[list[Frame], None]:
        run = await self.get(run_id)
        async for batch in self.follow(run, after, stopping=stopping, idle=idle):
            yield batch

    async def wait(self, run: RunRef, after: int, *, cancel_if_abandoned: bool) -> dict[str, Any]:
        """Follow the run until it pauses or ends; its RunOutput as JSON. With
        `cancel_if_abandoned`, a caller that stops waiting cancels the run."""
        last: Frame | None = None
        try:
            async for batch in self.follow(run, after, stopping=self.server_stopping):
                last = batch[-1]
        except asyncio.CancelledError:
            if cancel_if_abandoned:
                self.request_cancel(run)
            raise
        if last is not None and last.event == "RunCompleted":
            # The event carries the whole RunOutput as stored: no need to read it back.
            output: dict[str, Any] = jsontext.loads(last.data)
            output.pop("event", None)
            output.pop("seq", None)
            return output
        run_id = run if isinstance(run, str) else run.id
        ended = await self.output(run_id)
        if ended.status in ("queued", "running") and (
            self.manager.closing or self.server_stopping()
        ):
            # This process stops before the run ended: another replica takes it over.
            raise ShuttingDown(
                f"Run {run_id!r} continues on another replica: follow "
                f"/v1/runs/{run_id}/events, or read /v1/runs/{run_id} later.",
                extra={"run_id": run_id},
            )
        return ended.model_dump(mode="json")

    async def session_state(self, session_id: str) -> dict[str, Any] | None:
        """The session's state as stored (None: no such session): what a protocol
        shows its client of the state its runs read and write."""
        async with self.maker() as session:
            stored = await sessions.get_session(session, session_id)
            return dict(stored.state) if stored is not None else None

    @staticmethod
    async def _get(session: AsyncSession, run_id: str) -> Run:
        run = await repository.get_visible(session, run_id)
        if run is None:
            raise RunNotFound(f"No run {run_id!r}.")
        return run


def _check_cancellable(run: Run) -> None:
    if run.status in ("completed", "error"):
        raise RunNotActive(
            f"Run {run.id!r} already ended as {run.status}.", extra={"run_status": run.status}
        )
