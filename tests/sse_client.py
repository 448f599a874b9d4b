"""A small SSE client for tests: parses `id`, `event` and `data` lines."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class SSEMessage:
    id: int | None
    event: str
    data: dict[str, Any]


async def iter_sse(response: httpx.Response) -> AsyncIterator[SSEMessage]:
    event_id: int | None = None
    event = "message"
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield SSEMessage(event_id, event, json.loads("\n".join(data)))
            event_id, event, data = None, "message", []
        elif line.startswith(":") or line.startswith("retry:"):
            continue
        elif line.startswith("id:"):
            event_id = int(line[3:].strip())
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))


async def collect(response: httpx.Response) -> list[SSEMessage]:
    return [message async for message in iter_sse(response)]


def names(messages: list[SSEMessage]) -> list[str]:
    return [message.event for message in messages]


def collapsed(messages: list[SSEMessage]) -> list[str]:
    """Event names with runs of `RunContent` as one: text deltas that arrive
    within one write of the recorder are merged, so their number varies."""
    out: list[str] = []
    for name in names(messages):
        if not (name == "RunContent" and out and out[-1] == name):
            out.append(name)
    return out
