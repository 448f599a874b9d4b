"""The Chat Completions wire format of the fake model, encoded once per shape.

A streamed answer is HTTP/1.1 chunked SSE: the head with the role chunk, one
content chunk per token (or one tool-call chunk), then the finish reason, a
usage chunk when asked for, `data: [DONE]` and the last chunk; a non-streamed
answer is one JSON body. `build_answer` groups the bytes the way the ticker
sends them: one part per token when tokens are paced, else one part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

CREATED = 1_700_000_000
PROMPT_TOKENS = 12
WORD = "tok "


@dataclass(slots=True)
class Shape:
    tokens: int = 20
    token_delay_ms: float = 0.0
    first_delay_ms: float = 0.0


@dataclass(slots=True)
class Answer:
    """A pre-encoded answer: `head` goes out at once, `parts` one per tick."""

    head: bytes
    parts: list[bytes]


def _frame(payload: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(obj: Any) -> bytes:
    return _frame(b"data: " + orjson.dumps(obj) + b"\n\n")


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _usage(tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": tokens,
        "total_tokens": PROMPT_TOKENS + tokens,
    }


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
)
END = b"0\r\n\r\n"


def json_response(status: int, obj: Any, close: bool = False) -> bytes:
    body = orjson.dumps(obj)
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    extra = b"connection: close\r\n" if close else b""
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
    return head % (status, reason.encode(), len(body), extra) + body


def minimal_args(parameters: Any) -> str:
    """`{}`, or the least valid value for each required parameter."""
    if not isinstance(parameters, dict):
        return "{}"
    props = parameters.get("properties") or {}
    defaults = {"string": "x", "integer": 1, "number": 1, "boolean": True, "array": []}
    args = {}
    for name in parameters.get("required") or ():
        kind = (props.get(name) or {}).get("type", "string")
        args[name] = defaults.get(kind, {}) if isinstance(kind, str) else "x"
    return orjson.dumps(args).decode()


def _tool_calls(call: tuple[str, str], streamed: bool) -> list[dict[str, Any]]:
    function = {"name": call[0], "arguments": call[1]}
    first = {"index": 0} if streamed else {}
    return [{**first, "id": "call_fake", "type": "function", "function": function}]


def _completion(model: str, message: dict[str, Any], finish: str, tokens: int) -> dict[str, Any]:
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": CREATED,
            "model": model, "choices": [choice], "usage": _usage(tokens)}  # fmt: skip


def build_answer(
    shape: Shape, model: str, stream: bool, usage: bool, call: tuple[str, str] | None
) -> Answer:
    """Encode one answer: text of `shape.tokens` tokens, or a tool call."""
    tokens = 1 if call else shape.tokens
    finish = "tool_calls" if call else "stop"
    if not stream:
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if call:
            message["tool_calls"] = _tool_calls(call, streamed=False)
        else:
            message["content"] = WORD * tokens
        return Answer(b"", [json_response(200, _completion(model, message, finish, tokens))])
    head = STREAM_HEAD + _event(_chunk(model, {"role": "assistant", "content": ""}))
    if call:
        body = [_event(_chunk(model, {"tool_calls": _tool_calls(call, streamed=True)}))]
    else:
        body = [_event(_chunk(model, {"content": WORD})) for _ in range(tokens)]
    tail = _event(_chunk(model, {}, finish))
    if usage:
        tail += _event({**_chunk(model, {}), "choices": [], "usage": _usage(tokens)})
    tail += _frame(b"data: [DONE]\n\n") + END
    if shape.token_delay_ms > 0 and call is None:  # paced: one part per token
        return Answer(head, [*body[:-1], body[-1] + tail])
    return Answer(head, [b"".join(body) + tail])


def tool_answered(messages: list[dict[str, Any]]) -> bool:
    """Whether a `tool` message follows the last user message."""
    for message in reversed(messages):
        role = message.get("role")
        if role == "tool":
            return True
        if role == "user":
            return False
    return False
