"""Small helpers shared by the provider tests."""

from __future__ import annotations

import asyncio
from typing import Any

from app.engine.models.base import (
    ContentDelta,
    ModelClient,
    ModelDelta,
    ModelRequest,
    ReasoningDelta,
)

API_KEY = "sk-test-0123456789"


def ask(text: str = "Hi", **fields: Any) -> ModelRequest:
    """A request with one user message; `fields` are ModelRequest fields."""
    fields.setdefault("model", "fake-model")
    fields.setdefault("messages", [{"role": "user", "content": text}])
    return ModelRequest(**fields)


async def collect(client: ModelClient, request: ModelRequest) -> list[ModelDelta]:
    return [delta async for delta in client.stream(request)]


def joined(deltas: list[ModelDelta]) -> list[ModelDelta]:
    """Runs of text deltas as one: how many reads a stream took varies."""
    out: list[ModelDelta] = []
    for delta in deltas:
        last = out[-1] if out else None
        if isinstance(delta, ContentDelta) and isinstance(last, ContentDelta):
            out[-1] = ContentDelta(last.text + delta.text)
        elif isinstance(delta, ReasoningDelta) and isinstance(last, ReasoningDelta):
            out[-1] = ReasoningDelta(last.text + delta.text)
        else:
            out.append(delta)
    return out


async def first_content_then_cancel(
    client: ModelClient, request: ModelRequest
) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Start streaming in a task; the event is set when the first content delta arrives."""
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in client.stream(request):
            started.set()

    return asyncio.create_task(consume()), started
