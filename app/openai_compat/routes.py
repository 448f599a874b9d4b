"""The OpenAI-compatible routes: models, Chat Completions and the Responses API,
each a translation into the run service's calls and of the run's stored events.

A stored agent is a model (its id is the `model`); every completion of either
API is a run, visible, resumable and cancellable through the native routes as
well. Errors are in OpenAI's shape (`errors.OpenAIRoute`). A caller's W3C
`traceparent` header puts the run's trace under the caller's span, as on the
native route.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from openai.pagination import AsyncPage
from openai.types import Model
from openai.types.responses import Response as OpenAIResponse
from pydantic import BaseModel
from starlette.responses import Response

from app.agents import repository as agents
from app.compat.fastapi import direct
from app.deps import SessionDep
from app.engine import jsontext
from app.errors import AppError, RunNotActive
from app.openai_compat import chat, responses
from app.openai_compat.errors import (
    ErrorBody,
    OpenAIError,
    OpenAIRoute,
    from_app_error,
    model_not_found,
)
from app.openai_compat.responses import ResponseShape
from app.openai_compat.responses_schemas import ResponseCreateRequest
from app.openai_compat.schemas import ChatCompletionRequest
from app.openai_compat.wire import payload, unix_seconds
from app.runs.deps import RunServiceDep, run_service
from app.runs.schemas import RunExtras
from app.runs.service import RunRef, RunService
from app.runs.sse import translated_stream
from app.tables import Run

router = APIRouter(tags=["openai"], route_class=OpenAIRoute)


class ResponseDeleted(BaseModel):
    id: str
    object: Literal["response.deleted"] = "response.deleted"
    deleted: bool = True


def _errors(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": ErrorBody, "description": text} for status, text in descriptions.items()
    }


STREAM = {"description": "With `stream`: Server-Sent Events.", "content": {"text/event-stream": {}}}
NOT_FOUND = _errors({404: "No such response (`run_not_found`)."})
CREATE_ERRORS = _errors(
    {
        400: "Invalid or unsupported parameter (`param` names it).",
        404: "No such model (`model_not_found`): GET /v1/models lists the agents.",
        409: "The session of `previous_response_id` has an active run (`session_busy`).",
    }
)


def _json(value: BaseModel | dict[str, Any]) -> Response:
    body = payload(value) if isinstance(value, BaseModel) else value
    return Response(jsontext.dumps(body), media_type="application/json")


def _ping(request: Request) -> float:
    seconds: float = request.app.state.settings.sse_ping_seconds
    return seconds


def _supported(problem: tuple[str, str] | None) -> None:
    if problem is not None:
        param, why = problem
        raise OpenAIError(
            400, f"`{param}` is not supported: {why}.", code="unsupported_parameter", param=param
        )


@contextmanager
def _run_errors(params: dict[str, str], model: str) -> Iterator[None]:
    """The run service's errors, naming this API's parameters."""
    try:
        yield
    except AppError as error:
        raise from_app_error(error, params, model) from None


# Models ---------------------------------------------------------------------------


def _traced(request: Request, extras: RunExtras) -> RunExtras:
    """`extras` with the caller's trace context, which the run's trace continues."""
    traceparent = request.headers.get("traceparent")
    return extras.model_copy(update={"traceparent": traceparent}) if traceparent else extras


def _model(agent: Any) -> Model:
    return Model(
        id=agent.id, object="model", created=unix_seconds(agent.created_at), owned_by="agentd"
    )


@router.get("/v1/models", response_model=None)
async def list_models(session: SessionDep) -> Response:
    """Every agent, as a model (its id is the `model` of the other routes)."""
    models: list[Model] = []
    after: str | None = None
    while True:
        page = await agents.list_page(session, limit=500, after=after)
        models += [_model(agent) for agent in page]
        if len(page) < 500:
            break
        after = page[-1].id
    return _json(AsyncPage[Model](object="list", data=models))


@router.get("/v1/models/{model}", response_model=None, responses=_errors({404: "No such model."}))
async def retrieve_model(session: SessionDep, model: str) -> Response:
    agent = await agents.get(session, model)
    if agent is None:
        raise model_not_found(model)
    return _json(_model(agent))


# Chat Completions ------------------------------------------------------------------


@router.post("/v1/chat/completions", response_model=None, responses={200: STREAM, **CREATE_ERRORS})
@direct
async def create_chat_completion(request: Request, body: ChatCompletionRequest) -> Response:
    """A run of the agent named by `model` on the whole conversation (see `chat`)."""
    runs = run_service(request)
    _supported(body.unsupported())
    create, extras = chat.run_request(body)
    with _run_errors(chat.PARAMS, body.model):
        run = (await runs.create(body.model, create, _traced(request, extras))).run
    if body.stream:
        options = body.stream_options
        chunks = chat.ChatChunks(
            runs,
            run.id,
            run.agent_id,
            unix_seconds(run.created_at),
            include_usage=bool(options and options.include_usage),
        )
        return translated_stream(runs, run, 0, chunks, ping=_ping(request))
    output = await runs.wait(run, 0, cancel_if_abandoned=False)
    return _json(chat.completion(output))


# Responses -------------------------------------------------------------------------


@router.post("/v1/responses", response_model=None, responses={200: STREAM, **CREATE_ERRORS})
@direct
async def create_response(request: Request, body: ResponseCreateRequest) -> Response:
    """A run of the agent named by `model` (see `responses`); `background` answers
    at once, `stream` with the typed events."""
    runs = run_service(request)
    _supported(body.unsupported())
    with _run_errors(responses.PARAMS, body.model):
        create, extras = await responses.run_request(runs, body)
        started = await runs.create(body.model, create, _traced(request, extras))
    run = started.run
    shape = ResponseShape.of(
        run, background=bool(body.background), previous_response_id=body.previous_response_id
    )
    if body.stream:
        # Imported on the first Responses request: its templates build the SDK's
        # validators for `Response` (about 10 MB), which a service nobody asks for
        # Responses is spared.
        from app.openai_compat.response_events import ResponseEvents

        events = ResponseEvents(shape, runs)
        return translated_stream(runs, run, 0, events, ping=_ping(request))
    if body.background:
        return _json(shape.response("in_progress" if started.launch else "queued"))
    return _json(await _replayed(runs, run, shape))


@router.get(
    "/v1/responses/{response_id}", response_model=None, responses={200: STREAM, **NOT_FOUND}
)
async def retrieve_response(
    request: Request,
    runs: RunServiceDep,
    response_id: str,
    stream: bool = False,
    starting_after: Annotated[
        int | None, Query(ge=0, description="With `stream`: the events after this number.")
    ] = None,
) -> Response:
    """The Response of any run, or (`stream`) its events from the first, or after
    `starting_after`, then the live tail."""
    run = await runs.get(response_id)
    shape = ResponseShape.of(run)
    if stream:
        after = -1 if starting_after is None else starting_after
        from app.openai_compat.response_events import ResponseEvents  # (see above)

        events = ResponseEvents(shape, runs, after=after)
        return translated_stream(runs, run, 0, events, ping=_ping(request))
    return _json(await _current(runs, run, shape))


@router.post("/v1/responses/{response_id}/cancel", response_model=None, responses=NOT_FOUND)
async def cancel_response(runs: RunServiceDep, response_id: str) -> Response:
    """Cancel the run; the Response as it is then (a finished one unchanged)."""
    try:
        run = await runs.cancel(response_id)
    except RunNotActive:
        run = await runs.get(response_id)
    return _json(await _current(runs, run, ResponseShape.of(run)))


@router.delete("/v1/responses/{response_id}", response_model=None, responses=NOT_FOUND)
async def delete_response(runs: RunServiceDep, response_id: str) -> Response:
    """Delete the run (cancelled first while active) and its events."""
    await runs.delete(response_id)
    return _json(ResponseDeleted(id=response_id).model_dump())


async def _current(runs: RunService, run: Run, shape: ResponseShape) -> OpenAIResponse:
    """The Response of a stored run: its events tell what it said once it paused
    or ended; before that it has said nothing yet."""
    if run.status == "queued":
        return shape.response("queued")
    if run.status == "running":
        return shape.response("in_progress")
    return await _replayed(runs, run, shape)


async def _replayed(runs: RunService, run: RunRef, shape: ResponseShape) -> OpenAIResponse:
    """The Response of a run followed to its end (or pause) through its events."""
    from app.openai_compat.response_events import NOTHING_SENT, ResponseEvents  # (see above)

    events = ResponseEvents(shape, runs, after=NOTHING_SENT)
    async for batch in runs.follow(run, 0):
        events.frames(batch)
    await events.settle()
    return events.response()
