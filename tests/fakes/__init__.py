"""Fake model servers that speak the real wire formats over real HTTP.

    async with FakeOpenAIServer(Reply(text="Hello world")) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test")
        ...
        assert server.requests[0].body["model"] == "gpt-4o-mini"

Each server answers with the queued replies in order (`enqueue`; see `Reply`
for text, reasoning, tool calls, usage, delays, mid-stream errors and raw
bytes, and `error_reply(429)` for error statuses), echoes the last user
message when the queue is empty, and records every request (`requests`:
method, path, lower-case headers, JSON body, `completed`, `aborted` when the
client hung up mid-stream). `reset()` clears both between tests.
"""

from tests.fakes.anthropic_server import FakeAnthropicServer
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.script import CUT, RecordedRequest, Reply, ToolCall, chunks_of, error_reply

__all__ = [
    "CUT",
    "FakeAnthropicServer",
    "FakeOpenAIServer",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "chunks_of",
    "error_reply",
]
