"""AG-UI's HTTP endpoint, an adapter over the run service: a `RunAgentInput`
starts a run of the agent in the thread (the session), answers the
interrupts of a paused run (`resume`, or tool messages answering its client
tools), or, sent again with `Last-Event-ID`, resumes the stream it answered;
the answer is the run's events as AG-UI events (`AguiStream`)."""

from __future__ import annotations

from contextlib import aclosing
from typing import Annotated, Any

from ag_ui.core import RunAgentInput
from fastapi import APIRouter, Path, Request, Response, status
from starlette.responses import Response as StarletteResponse

from app.agui.events import AguiStream, parse_position
from app.agui.schemas import resume_decisions, run_request, tool_results
from app.compat.fastapi import direct
from app.engine.output import TERMINAL_STATUSES
from app.engine.spec import AGENT_ID_PATTERN
from app.errors import Conflict, RunNotFound, problems
from app.routing import StrictJSONRoute
from app.runs.deps import run_service
from app.runs.records import output_of
from app.runs.schemas import RunContinue
from app.runs.service import Answered, RunService
from app.runs.sse import translated_stream
from app.tables import Run

router = APIRouter(tags=["ag-ui"], route_class=StrictJSONRoute)

RECENT_RUNS = 20  # how far back in a thread a resume looks for its run


class InterruptNotPending(Conflict):
    code, title = "interrupt_not_pending", "No paused run waits on these interrupts"


STREAM_DOC = {
    "description": (
        "AG-UI events as SSE (`data:` lines, each with an `id` made from the run's event "
        "seq: `7`, `7.1`...). A paused run ends with `RUN_FINISHED` whose `outcome` is an "
        "interrupt per pending tool call (`id` = the tool call's id, `reason` "
        "`tool_approval`, `user_input` or `client_tool`)."
    ),
    "content": {"text/event-stream": {}},
}
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Resume the stream this same input answered after that frame's id.",
}


@router.post(
    "/v1/agents/{agent_id}/agui",
    response_class=Response,
    responses={
        200: STREAM_DOC,
        204: {"description": "Resumed after the last frame: nothing is left."},
        **problems(
            {
                404: "No such agent (`agent_not_found`).",
                409: (
                    "The thread has an active run (`session_busy`), `runId` names a run "
                    "another input started (`run_exists`), or `resume` answers calls no "
                    "paused run of the thread waits on (`interrupt_not_pending`)."
                ),
                422: "Invalid `RunAgentInput`, or answers of the wrong kind (`validation_error`).",
            }
        ),
    },
    openapi_extra={"parameters": [LAST_EVENT_ID]},
)
@direct
async def run_agent(
    request: Request,
    agent_input: RunAgentInput,
    agent_id: Annotated[str, Path(pattern=AGENT_ID_PATTERN)],
) -> StarletteResponse:
    """Run the agent for an AG-UI client (CopilotKit, `@ag-ui/client`'s `HttpAgent`):
    `threadId` is the session, `runId` the run, `messages` the whole conversation
    (the session's stored history is not added), `state` merged into the
    session's state, `tools` client tools for this run, `context` added to the
    instructions, `forwardedProps` kept in the run's metadata. `resume` answers a
    paused run's interrupts with the payloads continue takes: `{"confirmed",
    "note"}`, `{"user_input"}` or `{"result"}`."""
    runs = run_service(request)
    last_event_id = request.headers.get("last-event-id")
    if last_event_id is not None and parse_position(last_event_id) is not None:
        answered = await _run_answered(runs, agent_id, agent_input)
        if answered is not None:
            return await _reconnect(request, runs, agent_input, answered, last_event_id)
    if agent_input.resume:
        return await _resume(request, runs, agent_id, agent_input)
    results = tool_results(agent_input.messages)
    if results:
        paused = await _paused_on(runs, agent_id, agent_input.thread_id, set(results), whole=True)
        if paused is not None:
            decisions = [{"tool_call_id": key, "result": value} for key, value in results.items()]
            answers = RunContinue.model_validate({"tools": decisions, "stream": True})
            return await _continue(request, runs, agent_input, paused, answers)
    body, extras = run_request(agent_input)
    # The same input again (a retry that got no frame) answers the run it started,
    # whose stream is then sent from the start; another input with its runId is 409.
    started = await runs.create(agent_id, body, extras)
    return _stream(request, runs, agent_input, started.run, 0)


async def _resume(
    request: Request, runs: RunService, agent_id: str, agent_input: RunAgentInput
) -> StarletteResponse:
    resume = agent_input.resume or []
    wanted = {entry.interrupt_id for entry in resume}
    body = resume_decisions(resume)
    paused = await _paused_on(runs, agent_id, agent_input.thread_id, wanted, whole=False)
    if paused is None:
        raise InterruptNotPending(
            f"No paused run of thread {agent_input.thread_id!r} waits on {sorted(wanted)}.",
            extra={"interrupt_ids": sorted(wanted)},
        )
    return await _continue(request, runs, agent_input, paused, body)


async def _continue(
    request: Request, runs: RunService, agent_input: RunAgentInput, paused: Run, body: RunContinue
) -> StarletteResponse:
    announced = {decision.tool_call_id for decision in body.tools}
    run = await runs.continue_(paused.id, body)
    return _stream(request, runs, agent_input, run, run.last_seq, announced=announced)


async def _paused_on(
    runs: RunService, agent_id: str, thread_id: str, call_ids: set[str], *, whole: bool
) -> Run | None:
    """The thread's paused run that waits on every call of `call_ids` (with
    `whole`, on those calls alone)."""
    paused = await runs.list_runs(
        limit=RECENT_RUNS, before=None, agent_id=agent_id, session_id=thread_id, status="paused"
    )
    for run in paused:
        pending = {requirement.tool_call_id for requirement in output_of(run).requirements}
        if call_ids <= pending and (not whole or call_ids == pending):
            return run
    return None


async def _run_answered(runs: RunService, agent_id: str, agent_input: RunAgentInput) -> Run | None:
    """The run whose events this same input was answered with: the run `runId`
    names, or the one its `resume` continued."""
    try:
        run = await runs.get(agent_input.run_id)
    except RunNotFound:
        run = None
    if run is not None:
        mine = run.session_id == agent_input.thread_id and run.agent_id == agent_id
        return run if mine else None
    if not agent_input.resume:
        return None
    wanted = {entry.interrupt_id for entry in agent_input.resume}
    recent = await runs.list_runs(
        limit=RECENT_RUNS, before=None, agent_id=agent_id, session_id=agent_input.thread_id
    )
    for candidate in recent:
        output = output_of(candidate)
        if wanted <= {requirement.tool_call_id for requirement in output.requirements}:
            return None  # still waiting on them: the input was never acted on
        if wanted <= {tool.tool_call_id for tool in output.tools}:
            return candidate
    return None


async def _reconnect(
    request: Request, runs: RunService, agent_input: RunAgentInput, run: Run, last_event_id: str
) -> StarletteResponse:
    """The rest of the stream after `last_event_id`: the run translated from its
    start, only the frames after that id sent; 204 when nothing is left."""
    stream = _translation(runs, agent_input, run.id, resume_after=last_event_id)
    if run.status not in TERMINAL_STATUSES and run.status != "paused":
        ping = request.app.state.settings.sse_ping_seconds
        return translated_stream(runs, run, 0, stream, ping=ping)
    rest = []
    batches = runs.follow(run, 0)
    async with aclosing(batches):
        async for batch in batches:
            rest.append(stream.frames(batch))
            if stream.done:
                break
    rest.append(await stream.closing())
    body = b"".join(rest)
    if not body:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return Response(body, media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def _stream(
    request: Request,
    runs: RunService,
    agent_input: RunAgentInput,
    run: Answered,
    after: int,
    announced: set[str] | None = None,
) -> StarletteResponse:
    stream = _translation(runs, agent_input, run.id, announced=announced)
    ping = request.app.state.settings.sse_ping_seconds
    return translated_stream(runs, run, after, stream, ping=ping)


def _translation(
    runs: RunService, agent_input: RunAgentInput, run_id: str, **options: Any
) -> AguiStream:
    thread_id = agent_input.thread_id

    async def read_state() -> dict[str, Any] | None:
        return await runs.session_state(thread_id)

    return AguiStream(
        thread_id=thread_id,
        run_id=agent_input.run_id,
        stored_run_id=run_id,
        read_state=read_state,
        state_wanted=bool(agent_input.state),
        **options,
    )
