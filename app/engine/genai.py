"""The engine's messages in the shape the OpenTelemetry GenAI semantic conventions
record them: `gen_ai.input.messages` and `gen_ai.output.messages` as JSON.

The engine stores Chat Completions messages (see `app.engine.models.base`); the
conventions want each message as a role and a list of typed parts: `text`,
`tool_call` (id, name, arguments), `tool_call_response` (id, response),
`reasoning`, and `uri` / `blob` for images. Only called when a run records
sensitive data.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.engine.models.base import Message


def dumps(value: Any) -> str:
    """JSON text of `value`; what JSON cannot hold becomes its `str`."""
    return orjson.dumps(value, default=str).decode()


def input_messages(messages: list[Message]) -> str:
    """`gen_ai.input.messages`: every message sent to the model, in order."""
    return dumps([_message(message) for message in messages])


def output_messages(message: Message, finish_reason: str | None) -> str:
    """`gen_ai.output.messages`: the one answer (choice) of a model call."""
    output = _message(message)
    output["finish_reason"] = finish_reason or "stop"
    return dumps([output])


def _message(message: Message) -> dict[str, Any]:
    role = message.get("role", "user")
    parts: list[dict[str, Any]] = []
    if role == "tool":
        response = message.get("content")
        parts.append(
            {"type": "tool_call_response", "id": message.get("tool_call_id"), "response": response}
        )
        return {"role": role, "parts": parts}
    reasoning = message.get("reasoning_content")
    if reasoning:
        parts.append({"type": "reasoning", "content": reasoning})
    parts.extend(_content_parts(message.get("content")))
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name"),
                "arguments": _arguments(function.get("arguments", "")),
            }
        )
    return {"role": role, "parts": parts}


def _content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}] if content else []
    if not isinstance(content, list):
        return [{"type": "text", "content": dumps(content)}]
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "text", "content": part.get("text", "")})
        elif kind == "image_url":
            parts.append(_image(part.get("image_url") or {}))
        elif isinstance(kind, str):
            parts.append({"type": kind})
    return parts


def _image(image: dict[str, Any]) -> dict[str, Any]:
    url = str(image.get("url", ""))
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        mime_type = header[len("data:") :].split(";")[0]
        return {"type": "blob", "modality": "image", "mime_type": mime_type, "content": data}
    return {"type": "uri", "modality": "image", "uri": url}


def _arguments(raw: str) -> Any:
    """The call's arguments as an object when they are JSON, else as sent."""
    try:
        return orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        return raw
