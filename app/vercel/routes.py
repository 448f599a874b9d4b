"""The Vercel AI SDK's chat endpoints, an adapter over the run service: a
`useChat` request starts a run of the agent in the chat (the session), or
answers the chat's paused run from the tool parts of its last message; the
stream route re-attaches to the chat's active run (`useChat({resume: true})`).
Both answer the run's events as the UI message stream (`UIMessageStream`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from starlette.responses import Response as StarletteResponse

from app.compat.fastapi import direct
from app.engine.spec import AGENT_ID_PATTERN
from app.errors import problems
from app.routing import StrictJSONRoute
from app.runs.deps import RunServiceDep, run_service
from app.runs.records import output_of
from app.runs.schemas import SESSION_ID_PATTERN
from app.runs.service import Answered, RunService
from app.runs.sse import translated_stream
from app.vercel.schemas import ChatRequest, answered_calls, decisions, run_request
from app.vercel.stream import HEADERS, UIMessageStream

router = APIRouter(tags=["vercel-ai"], route_class=StrictJSONRoute)

RECENT_RUNS = 20  # how far back in a chat an answer looks for its paused run

STREAM_DOC = {
    "description": (
        "The AI SDK's UI message stream (`x-vercel-ai-ui-message-stream: v1`): `data:` "
        "lines of UI message chunks, then `data: [DONE]`. A call that needs approval ends "
        "the stream with a `tool-approval-request`; a client tool's call is left "
        "`input-available` for the client's `addToolOutput`."
    ),
    "content": {"text/event-stream": {}},
}
AgentPath = Annotated[str, Path(pattern=AGENT_ID_PATTERN)]


@router.post(
    "/v1/agents/{agent_id}/chat",
    response_class=Response,
    responses={
        200: STREAM_DOC,
        **problems(
            {
                404: "No such agent (`agent_not_found`).",
                409: "The chat has an active run (`session_busy`).",
                422: "Invalid chat request or answers (`validation_error`).",
            }
        ),
    },
)
@direct
async def chat(request: Request, body: ChatRequest, agent_id: AgentPath) -> StarletteResponse:
    """Run the agent for `useChat`: `id` is the session, `messages` the whole
    conversation (the session's stored history is not added). When the last
    message is the assistant's and its tool parts answer the chat's paused run
    (an approval responded to with `addToolApprovalResponse`, a client tool's
    output from `addToolOutput`), that run goes on instead."""
    runs = run_service(request)
    answered = answered_calls(body)
    if answered:
        paused = await runs.list_runs(
            limit=RECENT_RUNS, before=None, agent_id=agent_id, session_id=body.id, status="paused"
        )
        for run in paused:
            requirements = output_of(run).requirements
            if any(requirement.tool_call_id in answered for requirement in requirements):
                resumed = await runs.continue_(run.id, decisions(requirements, answered))
                known = {requirement.tool_call_id for requirement in requirements}
                return _stream(request, runs, resumed, resumed.last_seq, known)
    run_body, extras = run_request(body)
    started = await runs.create(agent_id, run_body, extras)
    return _stream(request, runs, started.run, 0)


@router.get(
    "/v1/agents/{agent_id}/chat/{chat_id}/stream",
    response_class=Response,
    responses={
        200: STREAM_DOC,
        204: {"description": "The chat has no active run, or does not exist."},
    },
)
async def resume_chat(
    request: Request,
    runs: RunServiceDep,
    agent_id: AgentPath,
    chat_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)],
) -> StarletteResponse:
    """The chat's active run's stream from its first part, as `useChat({resume:
    true})` expects (its transport replays it whole)."""
    for state in ("running", "queued"):
        active = await runs.list_runs(
            limit=1, before=None, agent_id=agent_id, session_id=chat_id, status=state
        )
        if active:
            return _stream(request, runs, active[0], 0)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _stream(
    request: Request,
    runs: RunService,
    run: Answered,
    after: int,
    known: set[str] | None = None,
) -> StarletteResponse:
    ping = request.app.state.settings.sse_ping_seconds
    stream = UIMessageStream(run.id, announced=known)
    return translated_stream(runs, run, after, stream, ping=ping, headers=HEADERS)
