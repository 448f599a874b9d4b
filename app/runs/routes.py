"""The native HTTP routes of runs, an adapter over the run service: create
(blocking, streaming, background), continue, cancel, read, list, and the
resumable event stream."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.responses import Response as StarletteResponse

from app.compat.fastapi import direct
from app.engine import jsontext
from app.engine.output import TERMINAL_STATUSES, RunOutput, RunStatus
from app.engine.spec import AGENT_ID_PATTERN
from app.errors import ValidationFailed, problems
from app.pagination import INVALID_PAGE, CursorQuery, LimitQuery, Page, decode_cursor, page_of
from app.routing import StrictJSONRoute
from app.runs.deps import RunServiceDep, run_service
from app.runs.records import NO_EXTRAS, output_of
from app.runs.schemas import RunAccepted, RunContinue, RunCreate, RunExtras, StreamOptions
from app.runs.service import Continued, RunService
from app.runs.sse import MAX_SEQ, event_stream, parse_last_event_id
from app.tables import Run
from app.worker.store import NewRun

router = APIRouter(tags=["runs"], route_class=StrictJSONRoute)

RunIdPath = Annotated[str, Path(max_length=64, description="The run's id.")]

MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_KEY_DOC = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "A retry with the same key and body within 24 hours gets the original answer and"
        " starts nothing; the same key with another body is 422 `idempotency_key_reused`."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
}


def idempotency_key(header: str | None) -> str | None:
    """The `Idempotency-Key` header's value (422 when empty or too long)."""
    if header is None:
        return None
    if not 0 < len(header) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(
            "The Idempotency-Key header is invalid.",
            errors=[
                {
                    "loc": ["header", "Idempotency-Key"],
                    "msg": f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters",
                    "type": "string_length",
                }
            ],
        )
    return header


STREAM_DOC = {
    "description": (
        "The run as it happens: SSE with `id` = seq and `event` = the event name. "
        "Text deltas of the answer that arrive within one event write (at most 20 ms "
        "apart) are stored and sent as one `RunContent`; while the server is saturated, "
        "a model stream is read at most every `MODEL_READ_COALESCE_SECONDS` (0.2 s), so "
        "the pieces may be that far apart. The work after the answer does not fail the "
        "run: when the memory or summary model's call fails, `MemoryUpdateCompleted` / "
        "`SessionSummaryCompleted` carry `error` (`{code, message}`, e.g. "
        "`model_provider_error`), the failure is logged, and the run completes."
    ),
    "content": {"text/event-stream": {}},
}


async def _answer(
    request: Request,
    runs: RunService,
    run: Run | NewRun | Continued,
    options: StreamOptions,
    after: int,
) -> StarletteResponse:
    """Blocking JSON, an SSE stream, or 202 for a background run."""
    run_id = run.id
    if options.background:
        stored = await runs.get(run_id)
        body = RunAccepted(run_id=run_id, status=stored.status, session_id=run.session_id)
        return JSONResponse(
            body.model_dump(),
            status_code=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/v1/runs/{run_id}"},
        )
    cancel_if_abandoned = options.on_disconnect == "cancel"
    if options.stream:

        def on_disconnect() -> None:
            if cancel_if_abandoned:
                runs.request_cancel(run)

        return event_stream(
            runs,
            run,
            after,
            ping=request.app.state.settings.sse_ping_seconds,
            content_only=not options.stream_events,
            on_disconnect=on_disconnect,
        )
    output = await runs.wait(run, after, cancel_if_abandoned=cancel_if_abandoned)
    return Response(jsontext.dumps(output), media_type="application/json")


TRACEPARENT_DOC = {
    "name": "traceparent",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": (
        "W3C trace context of the caller: the run's trace continues it (its root span under"
        " the caller's span) unless `run_config.trace_id` names a trace. A malformed value"
        " is ignored."
    ),
}


@router.post(
    "/v1/agents/{agent_id}/runs",
    response_model=RunOutput,
    responses={
        200: STREAM_DOC,
        202: {"model": RunAccepted, "description": "Background run accepted."},
        **problems(
            {
                404: "No such agent (`agent_not_found`).",
                409: (
                    "The session has an active run (`session_busy`), or the `run_id` is"
                    " taken by another request (`run_exists`)."
                ),
                422: (
                    "Invalid body or input (`validation_error`), or the Idempotency-Key"
                    " was used for another request (`idempotency_key_reused`)."
                ),
            }
        ),
    },
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_DOC, TRACEPARENT_DOC]},
)
@direct
async def create_run(
    request: Request,
    body: RunCreate,
    agent_id: Annotated[str, Path(pattern=AGENT_ID_PATTERN)],
) -> StarletteResponse:
    """Run an agent: wait for the answer (200 RunOutput), stream it (`stream`), or
    start it in the background (`background`, 202 with a `Location`). A W3C
    `traceparent` header puts the run's trace under the caller's span."""
    runs = run_service(request)
    key = idempotency_key(request.headers.get("idempotency-key"))
    traceparent = request.headers.get("traceparent")
    extras = RunExtras(traceparent=traceparent) if traceparent else NO_EXTRAS
    started = await runs.create(agent_id, body, extras, idempotency_key=key)
    return await _answer(request, runs, started.run, body, 0)


@router.post(
    "/v1/runs/{run_id}/continue",
    response_model=RunOutput,
    responses={
        200: STREAM_DOC,
        202: {"model": RunAccepted, "description": "Background continuation accepted."},
        **problems(
            {
                404: "No such run (`run_not_found`).",
                409: (
                    "Not paused (`run_not_paused`, with the run's `run_status`) "
                    "or session busy (`session_busy`)."
                ),
                422: (
                    "Decisions missing, repeated or of the wrong kind (`validation_error`),"
                    " or the Idempotency-Key was used for another request"
                    " (`idempotency_key_reused`)."
                ),
            }
        ),
    },
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_DOC]},
)
async def continue_run(
    request: Request, body: RunContinue, runs: RunServiceDep, run_id: RunIdPath
) -> StarletteResponse:
    """Answer a paused run's requirements and resume it, from the stored state."""
    key = idempotency_key(request.headers.get("idempotency-key"))
    run = await runs.continue_(run_id, body, idempotency_key=key)
    return await _answer(request, runs, run, body, run.last_seq)


@router.post(
    "/v1/runs/{run_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(
        {
            404: "No such run (`run_not_found`).",
            409: "Already ended (`run_not_active`, with the run's `run_status`).",
        }
    ),
)
async def cancel_run(runs: RunServiceDep, run_id: RunIdPath) -> RunAccepted:
    """Cancel a queued, running or paused run (idempotent once cancelled)."""
    run = await runs.cancel(run_id)
    return RunAccepted(run_id=run.id, status=run.status, session_id=run.session_id)


@router.get("/v1/runs/{run_id}", responses=problems({404: "No such run (`run_not_found`)."}))
async def get_run(runs: RunServiceDep, run_id: RunIdPath) -> RunOutput:
    return await runs.output(run_id)


@router.get("/v1/runs", responses=INVALID_PAGE)
async def list_runs(
    runs: RunServiceDep,
    agent_id: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    status_: Annotated[RunStatus | None, Query(alias="status")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[RunOutput]:
    """Runs, newest first, filtered by agent, session, user and status."""
    before = decode_cursor(cursor, str)[0] if cursor else None
    rows, next_cursor = page_of(
        await runs.list_runs(
            limit=limit + 1,
            before=before,
            agent_id=agent_id,
            session_id=session_id,
            user_id=user_id,
            status=status_,
        ),
        limit,
        lambda row: [row.id],
    )
    data = [output_of(row) for row in rows]
    for item in data:
        item.messages = []  # the list stays light: GET /v1/runs/{id} has them
    return Page(data=data, next_cursor=next_cursor)


@router.get(
    "/v1/runs/{run_id}/events",
    response_class=Response,
    responses={
        200: STREAM_DOC,
        204: {"description": "The run has ended and nothing is after `Last-Event-ID`."},
        **problems({404: "No such run (`run_not_found`)."}),
    },
)
async def run_events(
    request: Request,
    runs: RunServiceDep,
    run_id: RunIdPath,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="Replay after this seq.")
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Any:
    """Every stored event after `Last-Event-ID` / `?after=`, then the live tail,
    until the run is paused or ends. 204 when the run has ended and nothing is
    after that point (a browser's EventSource then stops reconnecting)."""
    run = await runs.get(run_id)
    start = parse_last_event_id(last_event_id, after)
    if run.status in TERMINAL_STATUSES and start >= run.last_seq:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return event_stream(runs, run, start, ping=request.app.state.settings.sse_ping_seconds)
