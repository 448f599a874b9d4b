"""A fake Anthropic Messages server: `POST /v1/messages`, streaming or not.

Streams the way api.anthropic.com does: `message_start` (input usage),
`ping`, then one content block per part of the answer (`thinking` with
`thinking_delta`s and a `signature_delta`, `text` with `text_delta`s,
`tool_use` with `input_json_delta`s), each opened by `content_block_start`
and closed by `content_block_stop`, then `message_delta` (stop reason, output
usage) and `message_stop`. Errors mid-stream are `event: error`.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.script import FakeModelServer, Reply, SSEFrames, last_text, sse

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class FakeAnthropicServer(FakeModelServer):
    """`base_url` is the origin, ready for `anthropic.AsyncAnthropic(base_url=...)`."""

    path = "/v1/messages"

    def __init__(self, *replies: Reply) -> None:
        super().__init__(*replies)
        self._count = 0

    def echo(self, body: dict[str, Any]) -> Reply:
        for message in reversed(body.get("messages", [])):
            content = message.get("content")
            if message.get("role") == "user" and (text := last_text(content)):
                return Reply(text=text)
        return Reply(text="")

    def error_body(self, reply: Reply) -> dict[str, Any]:
        kind = _ERROR_TYPES.get(reply.status, "api_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": reply.error},
            "request_id": "req_fake",
        }

    def _stop_reason(self, reply: Reply) -> str:
        return reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")

    def _tool_id(self, index: int) -> str:
        return f"toolu_{self._count}_{index}"

    async def stream(self, reply: Reply, body: dict[str, Any]) -> SSEFrames:
        self._count += 1
        input_tokens, output_tokens = reply.usage
        yield sse(
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_fake{self._count}",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", ""),
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                },
            },
            "message_start",
        )
        yield sse({"type": "ping"}, "ping")
        index = 0
        if reply.reasoning_chunks:
            deltas = [{"type": "thinking_delta", "thinking": p} for p in reply.reasoning_chunks]
            deltas.append({"type": "signature_delta", "signature": "fake-signature"})
            for frame in _block(
                index, {"type": "thinking", "thinking": "", "signature": ""}, deltas
            ):
                yield frame
            index += 1
        if reply.text_chunks:
            deltas = [{"type": "text_delta", "text": piece} for piece in reply.text_chunks]
            for frame in _block(index, {"type": "text", "text": ""}, deltas):
                yield frame
            index += 1
        if reply.error:
            yield sse({"type": "error", "error": {"type": "overloaded_error",
                                                  "message": reply.error}}, "error")  # fmt: skip
            return
        for position, call in enumerate(reply.tool_calls):
            start = {"type": "tool_use", "id": call.id or self._tool_id(position),
                     "name": call.name, "input": {}}  # fmt: skip
            pieces = ["", *reply.pieces(call.arguments_json)]
            deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
            for frame in _block(index, start, deltas):
                yield frame
            index += 1
        yield sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": self._stop_reason(reply), "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
            "message_delta",
        )
        yield sse({"type": "message_stop"}, "message_stop")

    def complete(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        self._count += 1
        content: list[dict[str, Any]] = []
        if reply.reasoning_chunks:
            thinking = "".join(reply.reasoning_chunks)
            content.append({"type": "thinking", "thinking": thinking, "signature": "fake"})
        if reply.full_text:
            content.append({"type": "text", "text": reply.full_text})
        for position, call in enumerate(reply.tool_calls):
            arguments = call.arguments if isinstance(call.arguments, dict) else {}
            content.append({"type": "tool_use", "id": call.id or self._tool_id(position),
                            "name": call.name, "input": arguments})  # fmt: skip
        input_tokens, output_tokens = reply.usage
        return {
            "id": f"msg_fake{self._count}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", ""),
            "content": content,
            "stop_reason": self._stop_reason(reply),
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }


def _block(index: int, start: dict[str, Any], deltas: list[dict[str, Any]]) -> list[bytes]:
    frames = [sse({"type": "content_block_start", "index": index, "content_block": start},
                  "content_block_start")]  # fmt: skip
    frames += [
        sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
        for delta in deltas
    ]
    frames.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    return frames
