"""Runs: create, continue and cancel (the HTTP side), and `prepare` (the worker
side: the engine state a claimed run starts or resumes from)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.agents.resolver import Current, StoredAgents, load_spec
from app.db import utcnow
from app.engine.errors import InputError
from app.engine.loop import Runner
from app.engine.output import RunOutput
from app.engine.spec import AgentSpec, ModelRef
from app.engine.state import RunState
from app.errors import (
    RunNotActive,
    RunNotFound,
    RunNotPaused,
    SessionBusy,
    ValidationFailed,
)
from app.ids import new_id
from app.runs import repository
from app.runs.creation import RunCreations
from app.runs.repository import NewRun
from app.runs.schemas import RunContinue, RunCreate
from app.tables import Run
from app.worker.manager import Admission, RunManager


def iso(value: Any) -> str:
    return str(value.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def input_failed(exc: InputError, where: str = "body") -> ValidationFailed:
    errors = [{"loc": [where], "msg": message, "type": "value_error"} for message in exc.errors]
    return ValidationFailed("The run input is invalid.", errors=errors)


@dataclass(frozen=True, slots=True)
class Started:
    """A stored run and what the route must do once the transaction is committed."""

    run: NewRun
    launch: bool
    interrupt: str | None = None
    # The engine state to start from, when the request could build all of it
    # (a new session has no history): the worker then skips reloading.
    state: RunState | None = None


def _overrides(body: RunCreate) -> dict[str, Any]:
    config = body.run_config
    model = config.model
    settings = dict(config.model_settings or {})
    if isinstance(model, ModelRef):
        settings = {**model.settings, **settings}
        model = model.qualified
    return {
        "model": model,
        "model_settings": settings or None,
        "max_turns": config.max_turns,
        "output_schema": body.output_schema,
    }


def _input_payload(body: RunCreate) -> dict[str, Any]:
    value: Any = body.input
    if isinstance(value, list):
        value = [message.model_dump(exclude_none=True) for message in value]
    images = [image.model_dump(exclude_none=True) for image in body.images]
    return {"input": value, "images": images}


def new_state(
    runner: Runner,
    spec: AgentSpec,
    run: Run | NewRun,
    *,
    history: list[dict[str, Any]],
    state: dict[str, Any],
) -> RunState:
    """The engine's fresh state for a stored run (raises InputError)."""
    overrides = run.request.get("overrides", {})
    fresh = runner.new_state(
        spec,
        run.input["input"],
        run_id=run.id,
        session_id=run.session_id,
        user_id=run.user_id,
        created_at=iso(run.created_at),
        history=history,
        session_state=state,
        images=run.input.get("images", []),
        model=overrides.get("model"),
        model_settings=overrides.get("model_settings"),
        max_turns=overrides.get("max_turns"),
        output_schema=overrides.get("output_schema"),
    )
    fresh.metadata = dict(run.metadata_)
    fresh.streaming = run.request.get("streaming", True)
    return fresh


def _new_run(
    runner: Runner, spec: AgentSpec, body: RunCreate
) -> tuple[NewRun, dict[str, Any], RunState]:
    """A new run of `spec` as a record to store, and the engine state it starts
    from when its session is new (raises ValidationFailed for bad input)."""
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_id(),
        "agent_id": spec.id,
        "agent_version": spec.version,
        "session_id": body.session_id or new_id(),
        "user_id": body.user_id,
        "status": "queued",
        "model": spec.model_name,
        "input": _input_payload(body),
        "request": {
            "overrides": _overrides(body),
            "multitask_strategy": body.multitask_strategy,
            "run_config": body.run_config.model_dump(mode="json", exclude={"model"}),
            "streaming": body.watched,
        },
        "metadata_": body.metadata,
        "content_type": "str",
        "last_seq": 0,
        "cancel_requested": False,
        "attempt": 0,
        "created_at": now,
        "updated_at": now,
    }
    run = NewRun.of(values)
    try:  # reject bad input now, not when a worker picks the run up
        state = new_state(runner, spec, run, history=[], state=dict(body.session_state or {}))
    except InputError as exc:
        raise input_failed(exc) from None
    return run, values, state


def _start(run: NewRun, values: dict[str, Any], manager: RunManager) -> None:
    """Mark a run about to be stored as started by this worker."""
    values.update(status="running", started_at=run.created_at, attempt=1, **manager.lease())


def _new_session(run: NewRun, body: RunCreate) -> dict[str, Any]:
    return {
        "id": run.session_id,
        "user_id": body.user_id,
        "agent_id": run.agent_id,
        "state": dict(body.session_state or {}),
        "active_run_id": run.id,
        "created_at": run.created_at,
        "updated_at": run.created_at,
    }


async def create(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    manager: RunManager,
    runner: Runner,
    agents: StoredAgents,
    agent_id: str,
    body: RunCreate,
    admission: Admission,
    creations: RunCreations,
) -> Started:
    """Store a new run: started here when its session is free and this worker has
    room (`admission`), queued otherwise (or rejected, per `multitask_strategy`).
    The common case, with room here, is stored with the runs created at the
    same moment (`creations`); anything else takes a connection of its own."""
    known = agents.last_read(agent_id) if not body.session_state else None
    if known is not None and admission.start():
        grouped = creations.hold_session_and_insert_run
        started = await _create_in_free_session(grouped, manager, runner, known, body, admission)
        if started is not None:
            return started
        known = None  # that statement found the session busy or the agent changed
    async with connect() as db:
        started = None
        if known is not None:
            alone = partial(repository.hold_session_and_insert_run, db)
            started = await _create_in_free_session(
                alone, manager, runner, known, body, admission, db
            )
        if started is None:
            started = await _create_general(db, manager, runner, agents, agent_id, body, admission)
        await db.commit()
    return started


async def _create_general(
    db: AsyncConnection,
    manager: RunManager,
    runner: Runner,
    agents: StoredAgents,
    agent_id: str,
    body: RunCreate,
    admission: Admission,
) -> Started:
    """Any run: the agent read, its session created, taken, merged into or busy."""
    current = await agents.current(db, agent_id)
    run, values, state = _new_run(runner, current.spec, body)
    start_here = admission.start()
    created = await repository.create_session(db, _new_session(run, body))
    acquired = created
    if not created:
        if body.session_state:
            await repository.merge_session_state(db, run.session_id, body.session_state)
        acquired = await repository.acquire_session(db, run.session_id, run.id)
    if not acquired:
        return await _session_taken(db, manager, run, values, body)
    if start_here:
        _start(run, values, manager)
    await repository.insert_run(db, values)
    if not start_here:  # the session is its; a worker with room starts it
        await manager.notifier.control(db, "work", "queued")
        return Started(run, launch=False)
    return Started(run, launch=True, state=state if created else None)


HoldAndInsert = Callable[..., Awaitable[bool | None]]


async def _create_in_free_session(
    hold_and_insert: HoldAndInsert,
    manager: RunManager,
    runner: Runner,
    known: Current,
    body: RunCreate,
    admission: Admission,
    db: AsyncConnection | None = None,
) -> Started | None:
    """The common case in one statement where the database allows: a run of
    the agent version this process read last, in a new session or a free one.
    None (nothing stored) when the session is busy, that version is no longer
    the agent's newest, or the input does not fit it (the newest decides).
    Without `db` (a grouped creation) the caller has taken a slot."""
    try:
        run, values, state = _new_run(runner, known.spec, body)
    except ValidationFailed:
        return None
    start_here = admission.start()
    if start_here:
        _start(run, values, manager)
    created = await hold_and_insert(
        _new_session(run, body),
        values,
        agent_version=known.spec.version,
        agent_updated_at=known.updated_at,
    )
    if created is None:
        return None
    if not start_here:
        assert db is not None
        await manager.notifier.control(db, "work", "queued")
        return Started(run, launch=False)
    # A new session has no history: the state built here is all there is.
    return Started(run, launch=True, state=state if created else None)


async def _session_taken(
    db: AsyncConnection,
    manager: RunManager,
    run: NewRun,
    values: dict[str, Any],
    body: RunCreate,
) -> Started:
    """The session has an active run: reject, queue, or interrupt it."""
    active = await repository.active_run_of(db, run.session_id)
    if body.multitask_strategy == "reject":
        raise SessionBusy(
            f"Session {run.session_id!r} has an active run ({active}).",
            extra={"active_run_id": active},
        )
    await repository.insert_run(db, values)
    # The session's run may end on another replica: it must hear that one waits.
    await manager.notifier.control(db, "work", "queued")
    if body.multitask_strategy == "interrupt" and active is not None:
        await repository.update_owned(
            db, active, None, {"cancel_requested": True}, repository.ACTIVE_STATUSES
        )
        await manager.notifier.control(db, "cancel", active)
        return Started(run, launch=False, interrupt=active)
    return Started(run, launch=False)


async def get(session: AsyncSession, run_id: str) -> Run:
    run = await repository.get(session, run_id)
    if run is None:
        raise RunNotFound(f"No run {run_id!r}.")
    return run


async def continue_(
    session: AsyncSession, manager: RunManager, runner: Runner, run_id: str, body: RunContinue
) -> Run:
    run = await get(session, run_id)
    if run.status != "paused" or run.state is None:
        raise RunNotPaused(f"Run {run_id!r} is {run.status}.", extra={"run_status": run.status})
    state = RunState.model_validate(run.state)
    decisions = [decision.model_dump(exclude_unset=True) for decision in body.tools]
    try:
        resumed = runner.apply_decisions(state, decisions)
    except InputError as exc:
        raise input_failed(exc, "tools") from None
    resumed.streaming = body.watched
    if not await repository.acquire_session(session, run.session_id, run.id):
        raise SessionBusy(f"Session {run.session_id!r} has an active run.")
    moved = await repository.transition(
        session,
        run_id,
        ("paused",),
        {
            "status": "running",
            "state": resumed.model_dump(mode="json"),
            **manager.lease(),
            "attempt": Run.attempt + 1,
            "updated_at": utcnow(),
        },
    )
    if not moved:  # a concurrent continue or cancel got there first
        raise RunNotPaused(f"Run {run_id!r} is no longer paused.")
    return run


def check_cancellable(run: Run) -> None:
    if run.status in ("completed", "error"):
        raise RunNotActive(
            f"Run {run.id!r} already ended as {run.status}.", extra={"run_status": run.status}
        )


async def prepare(runner: Runner, session: AsyncSession, run: Run) -> RunState:
    """The state a claimed run starts from: its checkpoint, or a fresh one."""
    if run.state is not None:
        return RunState.model_validate(run.state)
    try:
        spec = await load_spec(session, run.agent_id, run.agent_version)
    except KeyError:
        raise InputError([f"agent {run.agent_id!r} no longer exists"]) from None
    stored = await repository.get_session(session, run.session_id)
    history: list[dict[str, Any]] = []
    if spec.history.enabled:
        history = await repository.history(session, run.session_id, spec.history.num_runs)
    return new_state(runner, spec, run, history=history, state=dict(stored.state) if stored else {})


def output_of(run: Run) -> RunOutput:
    """The RunOutput of a stored run, whatever its status."""
    if run.output is not None:
        base = dict(run.output)
    elif run.state is not None:
        base = RunState.model_validate(run.state).to_output().model_dump(mode="json")
    else:
        base = {}
    base.update(
        run_id=run.id,
        agent_id=run.agent_id,
        agent_version=run.agent_version,
        session_id=run.session_id,
        user_id=run.user_id,
        status=run.status,
        model=base.get("model") or run.model,
        metadata=run.metadata_,
        created_at=iso(run.created_at),
        updated_at=iso(run.updated_at),
    )
    if run.error is not None:
        base["error"] = run.error
    if run.last_agent_id:
        base["last_agent_id"] = run.last_agent_id
    return RunOutput.model_validate(base)
