"""Cancellation is prompt: mid model stream and mid tool call (tasks are cancelled)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from app.engine.events import RunContent, ToolCallCompleted, ToolCallStarted
from app.engine.loop import Runner
from app.engine.state import RunState

from .helpers import agent, make_runner, new_state

PROMPT = 0.5  # seconds


async def _cancel_when(runner: Runner, state: RunState, ready: Any, expected: int = 1) -> list[Any]:
    """Consume the stream in a task; cancel it once `expected` items match `ready`."""
    items: list[Any] = []
    seen = asyncio.Event()

    async def consume() -> None:
        async for item in runner.stream(state):
            items.append(item)
            if sum(1 for i in items if ready(i)) >= expected:
                seen.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(seen.wait(), 5)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < PROMPT
    return items


async def test_cancel_mid_model_stream() -> None:
    spec = agent(model_settings={"chunk_delay": 0.3})
    runner = make_runner(spec)
    state = new_state(runner, spec, "one two three four five six seven eight")

    items = await _cancel_when(runner, state, lambda i: isinstance(i, RunContent))
    assert [type(i).__name__ for i in items] == ["RunStarted", "RunContent"]
    assert state.status == "cancelled"
    assert [m["role"] for m in state.messages] == ["user"]  # the half turn is not stored


async def test_cancel_mid_tool_call_cancels_the_running_tools() -> None:
    cancelled = asyncio.Event()
    release = threading.Event()

    async def wait_forever() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    def block_thread() -> str:
        release.wait(5)  # a sync tool cannot be killed; the run must not wait for it
        return "late"

    spec = agent(model="test:tools", tools=["wait_forever", "block_thread"])
    runner = make_runner(spec, tools=[wait_forever, block_thread])
    state = new_state(runner, spec)
    try:
        items = await _cancel_when(
            runner, state, lambda i: isinstance(i, ToolCallStarted), expected=2
        )
        await asyncio.wait_for(cancelled.wait(), PROMPT)
    finally:
        release.set()
    assert "ToolCallCompleted" not in [getattr(i, "event", "") for i in items]
    assert state.status == "cancelled"
    assert not any(m["role"] == "tool" for m in state.messages)
    assert {t.status for t in state.tools} == {"running"}


async def test_closing_the_stream_early_cancels_running_tools() -> None:
    cancelled = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    async def fast() -> str:
        return "done"

    spec = agent(model="test:tools", tools=["slow", "fast"])
    runner = make_runner(spec, tools=[slow, fast])
    stream = runner.stream(new_state(runner, spec))
    async for item in stream:
        if isinstance(item, ToolCallCompleted):  # fast is done, slow is running
            break
    started = time.monotonic()
    await stream.aclose()  # a consumer that stops reading (e.g. a closed connection)
    assert cancelled.is_set()
    assert time.monotonic() - started < PROMPT
