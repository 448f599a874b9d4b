"""A run as stored and as answered: the record a new run is stored with, the
engine state it starts or resumes from (`prepare`, the worker's callback), and
the RunOutput of a stored run."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import principal
from app.agents.resolver import load_spec
from app.db import utcnow
from app.engine.errors import InputError
from app.engine.loop import Runner
from app.engine.media import UnsupportedMediaError
from app.engine.output import RunOutput
from app.engine.spec import AgentSpec, ClientTool, ModelRef
from app.engine.state import RunState, TraceContext
from app.engine.summary import SessionSummary
from app.errors import UnsupportedMedia, ValidationFailed
from app.ids import new_id
from app.runs.schemas import RunCreate, RunExtras
from app.sessions import repository as sessions
from app.tables import Run
from app.tracing import trace_id_hex, trace_origin
from app.worker.store import NewRun

NO_EXTRAS = RunExtras()
# RunConfig's fields the overrides carry (the rest is stored as sent).
_IN_OVERRIDES = {"model", "input_guardrails", "output_guardrails", "handoff_input_filter"}

# run_config's tracing options and their defaults (see RunConfig).
TRACE_OPTIONS = {
    "tracing_disabled": False,
    "trace_include_sensitive_data": True,
    "workflow_name": None,
    "trace_id": None,
    "group_id": None,
    "trace_metadata": None,
}


def iso(value: Any) -> str:
    return str(value.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def input_failed(exc: InputError, where: str = "body") -> ValidationFailed:
    errors = [{"loc": [where], "msg": message, "type": "value_error"} for message in exc.errors]
    return ValidationFailed("The run input is invalid.", errors=errors)


def _overrides(body: RunCreate, extras: RunExtras) -> dict[str, Any]:
    config = body.run_config
    model = config.model
    settings = dict(config.model_settings or {})
    if isinstance(model, ModelRef):
        settings = {**model.settings, **settings}
        model = model.qualified
    overrides = {
        "model": model,
        "model_settings": settings or None,
        "max_turns": config.max_turns,
        "output_schema": body.output_schema,
        "instructions": extras.instructions,
        "client_tools": [tool.model_dump(mode="json") for tool in extras.client_tools],
    }
    # Stored only when given: a run without them stores what it stored before.
    for stage in ("input_guardrails", "output_guardrails"):
        configs = getattr(config, stage)
        if configs:
            overrides[stage] = [g.model_dump(mode="json") for g in configs]
    if config.handoff_input_filter != "none":
        overrides["handoff_input_filter"] = config.handoff_input_filter
    return overrides


def _input_payload(body: RunCreate) -> dict[str, Any]:
    value: Any = body.input
    if isinstance(value, list):
        value = [message.model_dump(exclude_none=True) for message in value]
    images = [image.model_dump(exclude_none=True) for image in body.images]
    payload: dict[str, Any] = {"input": value, "images": images}
    for field in ("audio", "video", "files"):
        items = getattr(body, field)
        if items:
            payload[field] = [item.model_dump(exclude_none=True) for item in items]
    return payload


def new_state(
    runner: Runner,
    spec: AgentSpec,
    run: Run | NewRun,
    *,
    history: list[dict[str, Any]],
    state: dict[str, Any],
    summary: dict[str, Any] | None = None,
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
        media={
            field: run.input[field] for field in ("audio", "video", "files") if field in run.input
        },
        model=overrides.get("model"),
        model_settings=overrides.get("model_settings"),
        max_turns=overrides.get("max_turns"),
        output_schema=overrides.get("output_schema"),
        instructions=overrides.get("instructions"),
        client_tools=[ClientTool.model_validate(t) for t in overrides.get("client_tools", [])],
        session_summary=SessionSummary.model_validate(summary) if summary else None,
        input_guardrails=overrides.get("input_guardrails", []),
        output_guardrails=overrides.get("output_guardrails", []),
        handoff_input_filter=overrides.get("handoff_input_filter", "none"),
    )
    fresh.metadata = dict(run.metadata_)
    fresh.streaming = run.request.get("streaming", True)
    fresh.trace = trace_context(run.request)
    return fresh


def trace_context(request: dict[str, Any]) -> TraceContext | None:
    """The run's trace, from its stored request: None when the run was created
    without tracing and its run_config left every tracing option as it was."""
    config = request.get("run_config") or {}
    origin = request.get("trace")
    if origin is None and (
        # A run_config stored whole holds every option (one comparison, no loop).
        config.items() >= TRACE_OPTIONS.items()
        or all(config.get(k, v) == v for k, v in TRACE_OPTIONS.items())
    ):
        return None
    origin = origin or {}
    trace_id = origin.get("trace_id")
    if trace_id is None and config.get("trace_id"):
        trace_id = trace_id_hex(config["trace_id"])
    return TraceContext(
        trace_id=trace_id,
        parent_span_id=origin.get("parent_span_id"),
        sampled=origin.get("sampled", True),
        disabled=config.get("tracing_disabled", False),
        include_sensitive_data=config.get("trace_include_sensitive_data", True),
        workflow_name=config.get("workflow_name"),
        group_id=config.get("group_id"),
        metadata=config.get("trace_metadata") or {},
    )


def new_run(
    runner: Runner, spec: AgentSpec, body: RunCreate, extras: RunExtras = NO_EXTRAS
) -> tuple[NewRun, dict[str, Any], RunState]:
    """A new run of `spec` as a record to store (its column values), and the
    engine state it starts from when its session is new (raises
    ValidationFailed for bad input)."""
    now = utcnow()
    config = body.run_config
    traced = runner.tracer.enabled and not config.tracing_disabled
    values: dict[str, Any] = {
        "id": extras.run_id or new_id(),
        "tenant_id": principal.tenant(),
        "agent_id": spec.id,
        "agent_version": spec.version,
        "session_id": body.session_id or new_id(),
        "user_id": body.user_id,
        "status": "queued",
        "model": spec.model_name,
        "input": _input_payload(body),
        "request": {
            "overrides": _overrides(body, extras),
            "session_history": extras.session_history,
            "multitask_strategy": body.multitask_strategy,
            "run_config": config.model_dump(mode="json", exclude=_IN_OVERRIDES),
            "streaming": body.watched,
            "trace": trace_origin(config.trace_id, extras.traceparent, traced=traced),
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
    except UnsupportedMediaError as exc:
        errors = [{"loc": ["body"], "msg": m, "type": "unsupported_media"} for m in exc.errors]
        raise UnsupportedMedia("The run's model cannot take its media.", errors=errors) from None
    except InputError as exc:
        raise input_failed(exc) from None
    return run, values, state


def new_session(run: NewRun, body: RunCreate) -> dict[str, Any]:
    """The column values of the session a new run creates, held by that run."""
    return {
        "tenant_id": run.tenant_id,
        "id": run.session_id,
        "user_id": body.user_id,
        "agent_id": run.agent_id,
        "state": dict(body.session_state or {}),
        "active_run_id": run.id,
        "created_at": run.created_at,
        "updated_at": run.created_at,
    }


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


async def prepare(runner: Runner, session: AsyncSession, run: Run) -> RunState:
    """The state a claimed run starts from: its checkpoint, or a fresh one (the
    worker's `Prepare`; raises InputError when the run cannot start)."""
    if run.state is not None:
        return RunState.model_validate(run.state)
    try:
        spec = await load_spec(session, run.agent_id, run.agent_version)
    except KeyError:
        raise InputError([f"agent {run.agent_id!r} no longer exists"]) from None
    stored = await sessions.get_session(session, run.session_id)
    history: list[dict[str, Any]] = []
    if spec.history.enabled and run.request.get("session_history", True):
        history = await sessions.history(session, run.session_id, spec.history.num_runs)
    return new_state(
        runner,
        spec,
        run,
        history=history,
        state=dict(stored.state) if stored else {},
        summary=stored.summary if stored else None,
    )
