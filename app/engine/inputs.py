"""Validation of what callers send: run input, media and human decisions.

Every function collects all the problems it finds and raises one `InputError`
listing them, so a client fixes its request in one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from jsonschema import validators
from referencing.exceptions import Unresolvable

from app.engine.context import handoff_tool_name
from app.engine.errors import InputError
from app.engine.media import media_parts
from app.engine.models.base import Message
from app.engine.output import Requirement
from app.engine.spec import AgentSpec, ClientTool, McpToolUse, mcp_use, split_model
from app.engine.state import RunState
from app.engine.structured import schema_errors

INPUT_ROLES = frozenset({"user", "assistant", "system", "developer", "tool"})
_PLAIN_FIELDS = frozenset({"role", "content"})
_MESSAGE_FIELDS = {
    "assistant": _PLAIN_FIELDS | {"tool_calls"},
    "tool": _PLAIN_FIELDS | {"tool_call_id"},
}

RunInput = str | list[dict[str, Any]] | dict[str, Any]


def input_messages(
    spec: AgentSpec, value: RunInput, media: dict[str, list[dict[str, Any]]]
) -> list[Message]:
    """The run's input as canonical messages, its media (`images`, `audio`, `video`,
    `files`) joining the last user message; raises InputError."""
    errors: list[str] = []
    if spec.input_schema is not None:
        errors += _schema_problems("input", spec.input_schema, value)
    if isinstance(value, str):
        messages: list[Message] = [{"role": "user", "content": value}]
    elif isinstance(value, dict):
        messages = [{"role": "user", "content": orjson.dumps(value).decode()}]
    elif isinstance(value, list):
        messages = _message_list(value, errors)
    else:
        errors.append("input: must be a string, a list of messages or an object")
        messages = []
    parts = media_parts(media, errors) if media else []
    if parts and not errors:
        _attach_media(messages, parts, errors)
    if errors:
        raise InputError(errors)
    return messages


def override_problems(
    spec: AgentSpec,
    providers: set[str],
    model: str | None,
    max_turns: int | None,
    output_schema: dict[str, Any] | None,
) -> list[str]:
    """Problems with the agent's model and the per-run overrides."""
    problems = _model_problems("model", spec.model_name, providers)
    if model is not None:
        problems += _model_problems("run_config.model", model, providers)
    if max_turns is not None and max_turns < 1:
        problems.append("run_config.max_turns: must be at least 1")
    if output_schema is not None:
        problems += [f"output_schema: {problem}" for problem in schema_errors(output_schema)]
    return problems


def client_tool_problems(spec: AgentSpec, client_tools: Sequence[ClientTool]) -> list[str]:
    """A run's client tools may not take a name the agent's own tools or handoffs use,
    nor repeat one."""
    taken = {handoff_tool_name(target) for target in spec.handoffs}
    for entry in spec.tools:
        if mcp_use(entry) is not None:
            continue  # an MCP tool whose name a run's client tool takes is named after its server
        assert not isinstance(entry, McpToolUse)
        taken.add(entry if isinstance(entry, str) else entry.name)
    problems: list[str] = []
    for index, tool in enumerate(client_tools):
        if tool.name in taken:
            problems.append(f"tools[{index}]: the name {tool.name!r} is taken")
        taken.add(tool.name)
    return problems


def _model_problems(where: str, model: str, providers: set[str]) -> list[str]:
    try:
        provider, _ = split_model(model)
    except ValueError as exc:
        return [f"{where}: {exc}"]
    if provider not in providers:
        return [f"{where}: unknown model provider {provider!r}"]
    return []


def input_text(state: RunState) -> str:
    """The text of this run's user messages: what input guardrails check."""
    texts: list[str] = []
    for message in state.new_messages():
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            texts.append(content)
        else:
            texts += [p["text"] for p in content if p.get("type") == "text"]
    return "\n".join(texts)


def hook_input(state: RunState) -> str | list[Message]:
    """The run input as a pre-hook sees it: the text of a single user message, else
    this run's messages."""
    new = state.new_messages()
    if len(new) == 1 and new[0]["role"] == "user" and isinstance(new[0]["content"], str):
        return str(new[0]["content"])
    return [dict(message) for message in new]


def replace_input(state: RunState, value: Any) -> None:
    """A pre-hook's replacement of the input: a string becomes the text of the last
    user message, a list of messages replaces this run's messages. Raises TypeError."""
    if isinstance(value, str):
        for message in reversed(state.new_messages()):
            if message["role"] == "user":
                content = message["content"]
                if isinstance(content, list):  # the text part(s) give way to one
                    others = [p for p in content if p.get("type") != "text"]
                    message["content"] = [{"type": "text", "text": value}, *others]
                else:
                    message["content"] = value
                return
        raise TypeError("the input has no user message to replace")
    if isinstance(value, list):
        errors: list[str] = []
        messages = _message_list(value, errors)
        if errors:
            raise TypeError("a hook returned an invalid input: " + "; ".join(errors))
        state.messages[state.history_length :] = messages
        return
    raise TypeError(f"a pre-hook must return None, a string or messages, not {type(value)}")


def _message_list(items: list[Any], errors: list[str]) -> list[Message]:
    """Messages in the canonical shape; earlier tool calls and their results may be
    among them (a client that sends the whole conversation), each call answered."""
    if not items:
        errors.append("input: the message list is empty")
    messages: list[Message] = []
    unanswered: dict[str, str] = {}  # tool call id -> where the call was made
    answered: set[str] = set()
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: must be an object with 'role' and 'content'")
            continue
        role = item.get("role") if isinstance(item.get("role"), str) else None
        extra = sorted(set(item) - _MESSAGE_FIELDS.get(role or "", _PLAIN_FIELDS))
        if extra:
            errors.append(f"{where}: unexpected field(s) {', '.join(extra)}")
        if role not in INPUT_ROLES:
            errors.append(f"{where}.role: must be one of {', '.join(sorted(INPUT_ROLES))}")
        message: Message = {"role": role, "content": item.get("content")}
        if role == "assistant" and "tool_calls" in item:
            message["tool_calls"] = _tool_calls(item["tool_calls"], where, unanswered, errors)
        elif role == "tool":
            message["tool_call_id"] = call_id = item.get("tool_call_id")
            if call_id in unanswered:
                del unanswered[call_id]
                answered.add(call_id)
            else:
                reason = "answered twice" if call_id in answered else "not an earlier tool call"
                errors.append(f"{where}.tool_call_id: {call_id!r} is {reason}")
        errors += _content_problems(where, message)
        messages.append(message)
    errors += [f"{at}: no tool result for call {call_id!r}" for call_id, at in unanswered.items()]
    return messages


def _tool_calls(
    calls: Any, where: str, unanswered: dict[str, str], errors: list[str]
) -> list[dict[str, Any]]:
    """An assistant message's tool calls, in the Chat Completions shape."""
    if not isinstance(calls, list):
        errors.append(f"{where}.tool_calls: must be a list")
        return []
    for index, call in enumerate(calls):
        at = f"{where}.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(call, dict)
            or not isinstance(call.get("id"), str)
            or call.get("type", "function") != "function"
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("arguments"), str)
        ):
            errors.append(
                f"{at}: must be {{'id', 'type': 'function', 'function': {{'name', 'arguments'}}}}"
            )
        elif call["id"] in unanswered:
            errors.append(f"{at}.id: {call['id']!r} is used twice")
        else:
            unanswered[call["id"]] = at
    return [
        {"id": c["id"], "type": "function", "function": dict(c["function"])}
        for c in calls
        if isinstance(c, dict) and isinstance(c.get("function"), dict)
    ]


def _content_problems(where: str, message: Message) -> list[str]:
    content = message["content"]
    if isinstance(content, list):
        problems: list[str] = []
        for part_index, part in enumerate(content):
            problems += _part_problems(f"{where}.content[{part_index}]", part)
        return problems
    if isinstance(content, str) or (content is None and message.get("tool_calls")):
        return []
    return [f"{where}.content: must be a string or a list of content parts"]


def _part_problems(where: str, part: Any) -> list[str]:
    if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
        return []
    if (
        isinstance(part, dict)
        and part.get("type") == "image_url"
        and isinstance(part.get("image_url"), dict)
        and isinstance(part["image_url"].get("url"), str)
    ):
        return []
    return [f"{where}: must be {{'type': 'text', 'text'}} or {{'type': 'image_url', 'image_url'}}"]


def _attach_media(messages: list[Message], parts: list[dict[str, Any]], errors: list[str]) -> None:
    """Media join the last user message of the input as content parts."""
    for message in reversed(messages):
        if message["role"] == "user":
            content = message["content"]
            text = [{"type": "text", "text": content}] if isinstance(content, str) else content
            message["content"] = [*text, *parts]
            return
    errors.append("media: the input has no user message to attach them to")


def _schema_problems(where: str, schema: dict[str, Any], value: Any) -> list[str]:
    validator = validators.validator_for(schema)(schema)
    try:
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    except Unresolvable as exc:  # stored before definitions were checked for this
        return [f"{where}: the agent's schema cannot be used ({exc})"]
    problems = []
    for error in errors:
        path = "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in error.absolute_path)
        problems.append(f"{where}{path}: {error.message}")
    return problems


def check_decisions(state: RunState, decisions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every pending call gets exactly one decision of its kind; returns them by tool_call_id."""
    if state.status != "paused" or not state.pending:
        raise InputError([f"tools: the run is not paused (status {state.status})"])
    pending = {req.tool_call_id: req for req in state.pending}
    accepted: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for index, decision in enumerate(decisions):
        where = f"tools[{index}]"
        call_id = decision.get("tool_call_id") if isinstance(decision, dict) else None
        if not isinstance(decision, dict) or not isinstance(call_id, str):
            errors.append(f"{where}: must be an object with a string 'tool_call_id'")
        elif call_id not in pending:
            errors.append(f"{where}: no pending tool call {call_id!r}")
        elif call_id in accepted:
            errors.append(f"{where}: a second decision for tool call {call_id!r}")
        else:
            problems = _decision_problems(pending[call_id], decision)
            errors += [f"{where} ({call_id}): {problem}" for problem in problems]
            accepted[call_id] = decision
    for call_id, req in pending.items():
        if call_id not in accepted:
            errors.append(f"tools: no decision for pending tool call {call_id!r} ({req.tool_name})")
    if errors:
        raise InputError(errors)
    return accepted


_DECISION_KEYS = {
    "confirmation": ("confirmed", {"confirmed", "note"}),
    "user_input": ("user_input", {"user_input"}),
    "external_execution": ("result", {"result"}),
}


def _decision_problems(req: Requirement, decision: dict[str, Any]) -> list[str]:
    key, allowed = _DECISION_KEYS[req.kind]
    given = set(decision) - {"tool_call_id"}
    if key not in given:
        return [f"{req.tool_name} needs {req.kind}: send '{key}'"]
    problems = [f"'{extra}' does not apply to {req.kind}" for extra in sorted(given - allowed)]
    if req.kind == "confirmation":
        if not isinstance(decision["confirmed"], bool):
            problems.append("'confirmed' must be true or false")
        if decision.get("note") is not None and not isinstance(decision["note"], str):
            problems.append("'note' must be a string")
    elif req.kind == "user_input":
        if not isinstance(decision["user_input"], dict):
            problems.append("'user_input' must be an object")
        elif req.user_input_schema is not None:
            problems += _schema_problems(
                "user_input", req.user_input_schema, decision["user_input"]
            )
    return problems
