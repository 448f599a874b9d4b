"""Storing a new run: the one way a run comes into being, whatever protocol asked.

A run is stored holding its session, started here when this process has room
(its status `running`, its lease ours) and queued otherwise. Two steps, the
second only when the first cannot decide:

1. The common case, one statement per run: a run of the agent version this
   process read last, in a new session or a free one, its id generated or the
   client's. It is stored with the runs created at the same moment
   (`RunCreations`: a group of one when nothing else is being written), started
   or queued; the replicas hear of queued runs once the group is stored. The
   statement stores nothing when the session is busy or the agent changed
   meanwhile, nor when a run has the client's id (`RunIdTaken`: the service
   answers the create sent again from that run); a cancel for that id that came
   first is used up there, and the run ends cancelled at once.
2. Everything else, on a connection of its own: the agent read from the
   database, the session created, taken, merged into (`session_state`) or busy;
   a busy session rejects, queues or interrupts per `multitask_strategy`. A run
   stored queued tells every replica there is work, in the same transaction. An
   idempotency key always takes this step.

Runs belong to the tenant of the principal creating them. With a limit on a
tenant's active runs, every creation takes step 2, where the tenant's
creations take turns (a lock per tenant) to count and store.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.agents.resolver import Current, StoredAgents
from app.engine.loop import Runner
from app.engine.state import RunState
from app.errors import SessionBusy, SessionNotFound, TooManyActiveRuns, ValidationFailed
from app.principal import Principal
from app.runs import repository
from app.runs.grouping import RunCreations
from app.runs.records import new_run, new_session
from app.runs.repository import IdTaken
from app.runs.schemas import RunCreate, RunExtras
from app.sessions import repository as sessions
from app.worker import store
from app.worker.capacity import Admission
from app.worker.manager import RunManager
from app.worker.store import NewRun


class RunIdTaken(Exception):
    """A run has the client-chosen id already: nothing was stored."""


@dataclass(frozen=True, slots=True)
class Started:
    """A stored run and what must follow once its transaction is committed."""

    run: NewRun
    launch: bool  # started here: the caller launches it
    interrupt: str | None = None  # the run this one interrupts, to cancel
    # The engine state to start from, when the request could build all of it
    # (a new session has no history): the worker then skips reloading.
    state: RunState | None = None


@dataclass(frozen=True, slots=True)
class Fingerprinted:
    """A create the client may send again: its digest, and its idempotency key."""

    fingerprint: str
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Creator:
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
    manager: RunManager
    runner: Runner
    agents: StoredAgents
    creations: RunCreations
    max_active_runs: int | None = None  # per tenant, queued and running

    async def create(
        self,
        agent_id: str,
        body: RunCreate,
        admission: Admission,
        extras: RunExtras,
        request: Fingerprinted | None = None,
        *,
        who: Principal,
    ) -> Started:
        """Store a new run for `who` (the current principal, as the caller read it;
        see the module's docstring); raises AgentNotFound,
        ValidationFailed, SessionBusy, SessionNotFound or TooManyActiveRuns, having
        stored nothing; with `request` (a client-chosen run id or an idempotency
        key), RunIdTaken, or IntegrityError when that id or key was taken meanwhile."""
        known = None
        if (
            not body.session_state
            and (request is None or request.idempotency_key is None)
            and self.max_active_runs is None
        ):
            known = self.agents.last_read(who.tenant_id, agent_id)
        if known is not None:
            started = await self._create_in_free_session(
                known, body, extras, admission, request, who.user_id
            )
            if started is not None:
                return started
        async with self.connect() as db:
            started = await self._create_general(db, agent_id, body, admission, extras, request)
            await db.commit()
        return started

    async def _create_in_free_session(
        self,
        known: Current,
        body: RunCreate,
        extras: RunExtras,
        admission: Admission,
        request: Fingerprinted | None,
        owner: str | None,
    ) -> Started | None:
        """Step 1: None (nothing stored) when the session is busy, that agent
        version is no longer the newest, or the input does not fit it (the newest
        decides). Started here with a slot (`admission`), queued without one.
        `owner`: the user the creator is bound to (None: any), whose sessions only it takes."""
        try:
            run, values, state = new_run(self.runner, known.spec, body, extras)
        except ValidationFailed:
            return None
        if request is not None:
            values["request"]["fingerprint"] = request.fingerprint
        start_here = admission.start()
        if start_here:
            self._start_here(run, values)
        held = await self.creations.hold_session_and_insert_run(
            new_session(run, body),
            values,
            agent_version=known.spec.version,
            agent_updated_at=known.updated_at,
            chosen_id=extras.run_id is not None,
            owner=owner,
        )
        if held is None:
            return None
        if isinstance(held, IdTaken):
            raise RunIdTaken(run.id)
        if held.cancelled:  # a cancel for its id came first: it ends at once
            run.cancel_requested = True
        if not start_here:  # a worker with room claims it
            self.manager.notifier.queued()
            return Started(run, launch=False)
        # A new session has no history: the state built here is all there is.
        return Started(run, launch=True, state=state if held.created else None)

    async def _create_general(
        self,
        db: AsyncConnection,
        agent_id: str,
        body: RunCreate,
        admission: Admission,
        extras: RunExtras,
        request: Fingerprinted | None,
    ) -> Started:
        """Step 2: any run; the agent read, its session created, taken, merged into
        or busy."""
        current = await self.agents.current(db, agent_id)
        run, values, state = new_run(self.runner, current.spec, body, extras)
        if request is not None:
            await self._claim_request(db, run, values, extras, request)
        if self.max_active_runs is not None:
            await repository.lock_tenant(db, run.tenant_id)
            if await repository.active_runs(db, run.tenant_id) >= self.max_active_runs:
                raise TooManyActiveRuns(
                    f"The tenant has {self.max_active_runs} queued or running runs, its limit."
                )
        start_here = admission.start()
        created = await sessions.create_session(db, new_session(run, body))
        acquired = created
        if not created:
            if not await sessions.reachable(db, run.session_id):
                raise SessionNotFound(f"No session {run.session_id!r}.")
            if body.session_state:
                await sessions.merge_session_state(db, run.session_id, body.session_state)
            acquired = await store.acquire_session(db, run.tenant_id, run.session_id, run.id)
        if not acquired:
            return await self._session_taken(db, run, values, body)
        if start_here:
            self._start_here(run, values)
        await repository.insert_run(db, values)
        if not start_here:  # the session is its; a worker with room starts it
            await self.manager.notifier.control(db, "work", "queued")
            return Started(run, launch=False)
        return Started(run, launch=True, state=state if created else None)

    async def _session_taken(
        self, db: AsyncConnection, run: NewRun, values: dict[str, Any], body: RunCreate
    ) -> Started:
        """The session has an active run: reject, queue, or interrupt it."""
        active = await sessions.active_run_of(db, run.session_id)
        if body.multitask_strategy == "reject":
            raise SessionBusy(
                f"Session {run.session_id!r} has an active run ({active}).",
                extra={"active_run_id": active},
            )
        await repository.insert_run(db, values)
        notifier = self.manager.notifier
        # The session's run may end on another replica: it must hear that one waits.
        await notifier.control(db, "work", "queued")
        if body.multitask_strategy == "interrupt" and active is not None:
            await store.update_owned(
                db, active, None, {"cancel_requested": True}, store.ACTIVE_STATUSES
            )
            await notifier.control(db, "cancel", active)
            return Started(run, launch=False, interrupt=active)
        return Started(run, launch=False)

    async def _claim_request(
        self,
        db: AsyncConnection,
        run: NewRun,
        values: dict[str, Any],
        extras: RunExtras,
        request: Fingerprinted,
    ) -> None:
        """A run with a client-chosen id or an idempotency key: the id must be free
        (a cancel that came first is applied), the key is stored with the run."""
        values["request"]["fingerprint"] = request.fingerprint
        if extras.run_id is not None:
            await repository.lock_run_id(db, extras.run_id)
            if await repository.run_exists(db, extras.run_id):
                raise RunIdTaken(extras.run_id)
            if await repository.take_cancel(db, run.tenant_id, extras.run_id):
                values["cancel_requested"] = run.cancel_requested = True
        if request.idempotency_key is not None:
            await repository.store_idempotency_key(
                db, request.idempotency_key, request.fingerprint, run.id, 0
            )

    def _start_here(self, run: NewRun, values: dict[str, Any]) -> None:
        """Mark a run about to be stored as started by this worker."""
        values.update(
            status="running", started_at=run.created_at, attempt=1, **self.manager.lease()
        )
