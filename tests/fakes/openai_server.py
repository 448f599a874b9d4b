"""A fake OpenAI Chat Completions server: `POST /v1/chat/completions`, streaming or not.

Streams the way api.openai.com does: a first chunk with the role, reasoning
chunks (`reasoning_content`, as DeepSeek and vLLM send them), content chunks,
tool calls with id and name first and the arguments in later pieces, a chunk
with the finish reason, a usage chunk when `stream_options.include_usage` is
set (and `"usage": null` on every other chunk then), and `data: [DONE]`.
"""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.script import FakeModelServer, Reply, SSEFrames, last_text, sse

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


class FakeOpenAIServer(FakeModelServer):
    """`base_url` ends in `/v1`, ready for `openai.AsyncOpenAI(base_url=...)`.

    `reasoning_field` names the delta field reasoning is streamed in
    ("reasoning_content", or "reasoning" as Ollama and OpenRouter send it).
    """

    path = "/v1/chat/completions"

    def __init__(self, *replies: Reply, reasoning_field: str = "reasoning_content") -> None:
        super().__init__(*replies)
        self.reasoning_field = reasoning_field
        self._count = 0

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def echo(self, body: dict[str, Any]) -> Reply:
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        return Reply(text=last_text(users[-1].get("content")) if users else "")

    def error_body(self, reply: Reply) -> dict[str, Any]:
        kind, code = _ERROR_TYPES.get(reply.status, ("server_error", None))
        return {"error": {"message": reply.error, "type": kind, "param": None, "code": code}}

    def _finish_reason(self, reply: Reply) -> str:
        return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")

    def _usage(self, reply: Reply) -> dict[str, int]:
        prompt, completion = reply.usage
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    async def stream(self, reply: Reply, body: dict[str, Any]) -> SSEFrames:
        self._count += 1
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        head = {
            "id": f"chatcmpl-fake{self._count}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "system_fingerprint": "fp_fake",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            extra = {"usage": None} if include_usage else {}
            return sse({**head, "choices": [choice], **extra})

        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in reply.reasoning_chunks:
            yield chunk({self.reasoning_field: piece})
        for piece in reply.text_chunks:
            yield chunk({"content": piece})
        for index, call in enumerate(reply.tool_calls):
            call_id = call.id or f"call_{self._count}_{index}"
            function = {"name": call.name, "arguments": ""}
            yield chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                         "function": function}]})  # fmt: skip
            for piece in reply.pieces(call.arguments_json):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        if reply.error:
            yield sse({"error": {"message": reply.error, "type": "server_error", "code": None}})
            return
        yield chunk({}, self._finish_reason(reply))
        if include_usage:
            yield sse({**head, "choices": [], "usage": self._usage(reply)})
        yield sse(b"[DONE]")

    def complete(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        self._count += 1
        message: dict[str, Any] = {"role": "assistant", "content": reply.full_text or None}
        if reply.reasoning_chunks:
            message[self.reasoning_field] = "".join(reply.reasoning_chunks)
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id or f"call_{self._count}_{index}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
                for index, call in enumerate(reply.tool_calls)
            ]
        return {
            "id": f"chatcmpl-fake{self._count}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self._finish_reason(reply),
                }
            ],
            "usage": self._usage(reply),
        }
