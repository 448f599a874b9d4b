"""What an AG-UI `RunAgentInput` asks of the run service, in the run service's
terms: the body and extras of a new run (the conversation the client sends
whole, the thread's state, its client tools and context), or the decisions
that answer a paused run (`resume` entries, or tool messages answering its
client tools). Interrupts are named by the tool call they wait on, so an
answer finds its call without any state kept here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn, TypeVar

from ag_ui.core import (
    AssistantMessage,
    Context,
    DeveloperMessage,
    Interrupt,
    Message,
    ResumeEntry,
    RunAgentInput,
    SystemMessage,
    TextPart,
    Tool,
    ToolMessage,
    UserMessage,
)
from pydantic import BaseModel, ValidationError

from app.engine import jsontext
from app.engine.output import Requirement
from app.errors import ValidationFailed
from app.runs.schemas import RunContinue, RunCreate, RunExtras

M = TypeVar("M", bound=BaseModel)

# Where a field of the run service's models comes from in RunAgentInput.
_FIELD_OF = {
    "run_id": "runId",
    "session_id": "threadId",
    "session_state": "state",
    "input": "messages",
    "client_tools": "tools",
    "instructions": "context",
}

REASONS = {
    "confirmation": "tool_approval",
    "user_input": "user_input",
    "external_execution": "client_tool",
}
_CONFIRMATION = {
    "type": "object",
    "properties": {"confirmed": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["confirmed"],
}
_RESULT = {"type": "object", "properties": {"result": {}}, "required": ["result"]}


def run_request(agent_input: RunAgentInput) -> tuple[RunCreate, RunExtras]:
    """A new run for `agent_input`; raises ValidationFailed naming the field."""
    state = agent_input.state
    if state is not None and not isinstance(state, dict):
        _fail(["state"], "must be an object (the thread's session state)")
    body: dict[str, Any] = {
        "input": conversation(agent_input.messages),
        "session_id": agent_input.thread_id,
        "stream": True,
        "session_state": state or None,
    }
    if agent_input.forwarded_props:
        body["metadata"] = {"forwarded_props": agent_input.forwarded_props}
    extras = {
        "run_id": agent_input.run_id,
        "instructions": instructions(agent_input.context or []),
        "client_tools": [client_tool(tool) for tool in agent_input.tools or []],
        "session_history": False,
    }
    return _valid(RunCreate, body), _valid(RunExtras, extras)


def conversation(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The messages the model reads: the text of user, assistant, system and
    developer messages (images of user messages as `image_url` parts). Tool calls
    and results of earlier turns stay out: the model sees what was said."""
    converted: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if isinstance(message, UserMessage):
            converted.append({"role": "user", "content": _user_content(message, index)})
        elif isinstance(message, AssistantMessage) and message.content:
            converted.append({"role": "assistant", "content": message.content})
        elif isinstance(message, (SystemMessage, DeveloperMessage)):
            converted.append({"role": message.role, "content": message.content})
    if not any(message["role"] == "user" for message in converted):
        _fail(["messages"], "needs at least one user message")
    return converted


def _user_content(message: UserMessage, index: int) -> str | list[dict[str, Any]]:
    if isinstance(message.content, str):
        return message.content
    parts: list[dict[str, Any]] = []
    for number, part in enumerate(message.content):
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
            continue
        source = part.source
        if part.type != "image" or source.type == "file":
            where = ["messages", index, "content", number]
            _fail(where, "only text parts, and images by URL or as data, are supported")
        url = source.value
        if source.type == "data":
            url = f"data:{source.mime_type};base64,{source.value}"
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def instructions(context: Sequence[Context]) -> str | None:
    """The client's context, added to the system message after the agent's
    instructions."""
    if not context:
        return None
    return "\n\n".join(f"{item.description}:\n{item.value}" for item in context)


def client_tool(tool: Tool) -> dict[str, Any]:
    parameters = tool.parameters or {"type": "object", "properties": {}}
    return {
        "type": "client",
        "name": tool.name,
        "description": tool.description,
        "parameters": parameters,
    }


def interrupt(requirement: Requirement) -> Interrupt:
    """The AG-UI interrupt of one pending tool call: its id is the call's id."""
    schema: dict[str, Any] = _RESULT
    if requirement.kind == "confirmation":
        schema = _CONFIRMATION
    elif requirement.kind == "user_input":
        wanted = requirement.user_input_schema or {"type": "object"}
        schema = {
            "type": "object",
            "properties": {"user_input": wanted},
            "required": ["user_input"],
        }
    args = jsontext.dumps(requirement.tool_args).decode()
    return Interrupt(
        id=requirement.tool_call_id,
        reason=REASONS[requirement.kind],
        message=f"{requirement.tool_name}({args})",
        tool_call_id=requirement.tool_call_id,
        response_schema=schema,
    )


def resume_decisions(entries: Sequence[ResumeEntry]) -> RunContinue:
    """The continue body of `resume` entries: each payload is what continue takes
    for that call (`confirmed`/`note`, `user_input` or `result`); a cancelled
    entry declines its call."""
    tools: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        decision: dict[str, Any] = {"tool_call_id": entry.interrupt_id}
        if entry.status == "cancelled":
            decision.update(confirmed=False, note="Cancelled by the user.")
        elif isinstance(entry.payload, dict):
            decision.update(entry.payload)
        else:
            where = ["resume", index, "payload"]
            _fail(where, "must be an object: confirmed, user_input or result")
        tools.append(decision)
    return _valid(RunContinue, {"tools": tools, "stream": True}, where="resume")


def tool_results(messages: Sequence[Message]) -> dict[str, Any]:
    """The tool messages after the conversation's last assistant message, by the
    call they answer: a client's results for its tools' calls."""
    results: dict[str, Any] = {}
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        content = message.content
        if not isinstance(content, str):
            content = "".join(part.text for part in content if isinstance(part, TextPart))
        results[message.tool_call_id] = message.error or content
    return results


def _valid(model: type[M], values: dict[str, Any], where: str | None = None) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = []
        for error in exc.errors(include_input=False, include_url=False):
            loc = list(error["loc"])
            if where is not None:
                loc = [where, *loc[1:]] if loc and loc[0] == "tools" else [where, *loc]
            elif loc and isinstance(loc[0], str):
                loc[0] = _FIELD_OF.get(loc[0], loc[0])
            errors.append({"loc": loc, "msg": error["msg"], "type": error["type"]})
        raise ValidationFailed("The run input is invalid.", errors=errors) from None


def _fail(loc: list[Any], message: str) -> NoReturn:
    raise ValidationFailed(
        "The run input is invalid.", errors=[{"loc": loc, "msg": message, "type": "value_error"}]
    )
