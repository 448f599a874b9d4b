"""The floor: the least a FastAPI service can do to relay one model answer.

No database, no events, no validation beyond one pydantic body: each endpoint
calls the (fake) model through the official `openai.AsyncOpenAI` client and
relays it. `POST /run` answers JSON with the whole answer; `POST /stream`
relays each content delta as SSE (`event: content`), then `event: done`. With
`"tools": true` the floor makes the tool round trip itself: a first call that
offers `current_time`, the tool run locally, a second call with its result.
agentd's figures are read as multiples of these.

Serve with `uvicorn bench.floor:app` and `OPENAI_BASE_URL` pointing at the model.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import openai
import orjson
from fastapi import FastAPI
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

MODEL = os.environ.get("FLOOR_MODEL", "fake")
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "current_time",
            "description": "The current date and time as an ISO 8601 string.",
            "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}},
        },
    }
]

app = FastAPI(title="agentd bench floor")
client = openai.AsyncOpenAI()


class RunIn(BaseModel):
    input: str
    tools: bool = False


def current_time() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def messages_for(body: RunIn) -> list[Any]:
    """The conversation, after the tool round trip when `tools` is asked for."""
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": body.input},
    ]
    if body.tools:
        first = await client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        message = first.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls or ():
            messages.append({"role": "tool", "tool_call_id": call.id, "content": current_time()})
    return messages


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/run")
async def run(body: RunIn) -> Response:
    messages = await messages_for(body)
    answer = await client.chat.completions.create(model=MODEL, messages=messages)
    content = answer.choices[0].message.content or ""
    return Response(orjson.dumps({"content": content}), media_type="application/json")


@app.post("/stream")
async def stream(body: RunIn) -> StreamingResponse:
    messages = await messages_for(body)

    async def events() -> AsyncIterator[bytes]:
        parts: list[str] = []
        chunks = await client.chat.completions.create(
            model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
        )
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                text = chunk.choices[0].delta.content
                parts.append(text)
                yield b"event: content\ndata: " + orjson.dumps({"content": text}) + b"\n\n"
        yield b"event: done\ndata: " + orjson.dumps({"content": "".join(parts)}) + b"\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")
