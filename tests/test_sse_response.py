"""The SSE response of run streams: what ends a stream, and what it leaves behind.

Driven as an ASGI app directly, so each ending can be timed exactly; the live
server tests in runs/test_streaming.py cover the same endings over real sockets,
and replicas/test_replicas.py a stream ended by SIGTERM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from sse_starlette.sse import AppStatus

from app.runs.sse import RETRY_MS, event_stream
from app.sse_response import EventStreamResponse, LastChunk, SendTimeoutError
from app.worker.following import follow

SCOPE = {"type": "http", "method": "GET", "path": "/", "headers": []}


class Client:
    """The ASGI side of one response: what was sent, and a disconnect to trigger."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()
        self.streaming = asyncio.Event()  # a first body part was sent

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message.get("body"):
            self.streaming.set()

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")

    @property
    def complete(self) -> bool:
        last = self.sent[-1] if self.sent else {}
        return last.get("type") == "http.response.body" and last.get("more_body") is False


def tasks_left() -> set[asyncio.Task[Any]]:
    """Tasks still running, besides this test's."""
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def stalled() -> AsyncIterator[bytes]:
    """A body that sends one event, then nothing for a minute."""
    yield b"data: first\n\n"
    await asyncio.sleep(60)


async def started(stream: EventStreamResponse, client: Client) -> asyncio.Task[None]:
    """The response running in a task of its own, once its first event is sent."""
    call = asyncio.create_task(stream(SCOPE, client.receive, client.send))
    await client.streaming.wait()
    return call


def response(body: AsyncIterator[bytes], **options: Any) -> EventStreamResponse:
    return EventStreamResponse(body, send_timeout=5, **options)


async def test_the_body_ends_the_stream_and_its_watchers() -> None:
    async def body() -> AsyncIterator[bytes]:
        for word in (b"a", b"b", b"c"):
            yield b"data: %s\n\n" % word

    before = tasks_left()
    client = Client()
    await response(body(), headers={"X-Accel-Buffering": "no"})(SCOPE, client.receive, client.send)
    assert client.sent[0]["type"] == "http.response.start"
    headers = dict(client.sent[0]["headers"])
    assert headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert headers[b"cache-control"] == b"no-store"
    assert headers[b"x-accel-buffering"] == b"no"
    assert client.body == b"data: a\n\ndata: b\n\ndata: c\n\n"
    assert client.complete
    await settle()
    assert tasks_left() == before  # both watchers gone


async def test_a_last_chunk_goes_with_the_end_of_the_response() -> None:
    cleaned = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"data: a\n\n"
            yield LastChunk(b"data: b\n\n")
            await asyncio.sleep(60)  # never reached: the body is closed once it is sent
        finally:
            cleaned.set()

    client = Client()
    await asyncio.wait_for(response(body())(SCOPE, client.receive, client.send), 2)
    bodies = [m for m in client.sent if m["type"] == "http.response.body"]
    assert bodies == [
        {"type": "http.response.body", "body": b"data: a\n\n", "more_body": True},
        {"type": "http.response.body", "body": b"data: b\n\n", "more_body": False},
    ]
    assert cleaned.is_set()


async def test_a_client_leaving_ends_the_stream_and_runs_the_bodys_cleanup() -> None:
    cleaned = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"data: first\n\n"
            await asyncio.sleep(60)
            yield b"data: never\n\n"
        finally:
            cleaned.set()

    client = Client()
    call = await started(response(body()), client)
    client.gone.set()
    await asyncio.wait_for(call, 2)  # returns normally: the client left, nothing failed
    assert cleaned.is_set()
    assert b"never" not in client.body
    assert not client.complete


async def test_a_cancel_from_outside_still_cancels() -> None:
    """The response swallows only the cancellation it asked for."""

    before = tasks_left()
    client = Client()
    call = await started(response(stalled()), client)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await settle()
    assert tasks_left() == before


async def test_a_cancel_from_outside_racing_a_disconnect_still_cancels() -> None:
    client = Client()
    call = await started(response(stalled()), client)
    client.gone.set()
    await asyncio.sleep(0)  # the disconnect watcher ends; its cancel is on its way
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_a_failing_body_raises_its_error() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        raise LookupError("broken")

    before = tasks_left()
    client = Client()
    with pytest.raises(LookupError, match="broken"):
        await response(body())(SCOPE, client.receive, client.send)
    await settle()
    assert tasks_left() == before


async def test_a_failing_receive_raises_its_error() -> None:
    async def receive() -> dict[str, Any]:
        raise ConnectionError("receive failed")

    client = Client()
    with pytest.raises(ConnectionError, match="receive failed"):
        await asyncio.wait_for(response(stalled())(SCOPE, receive, client.send), 2)


def stopped_runs() -> Any:
    """What `event_stream` reads of the run service: `follow`, here over a run
    manager of which it reads only what it needs before seeing a server going down."""
    notifier = SimpleNamespace(poll_interval=0.2)
    manager: Any = SimpleNamespace(bus=None, notifier=notifier, closing=False)

    def runs_follow(run_id: str, after: int, **options: Any) -> Any:
        return follow(run_id, after, manager=manager, maker=None, **options)  # type: ignore[arg-type]

    return SimpleNamespace(follow=runs_follow)


async def test_a_run_stream_ends_cleanly_once_the_server_stops() -> None:
    """uvicorn's signal handler sets sse-starlette's flag (tests/compat); the run's
    stream then ends as a complete response, not as a client that left."""
    left: list[str] = []
    client = Client()
    AppStatus.should_exit = True
    try:
        stream = event_stream(
            stopped_runs(), "r1", 0, ping=15, on_disconnect=lambda: left.append("r1")
        )
        await asyncio.wait_for(stream(SCOPE, client.receive, client.send), 2)
    finally:
        AppStatus.should_exit = False
    assert client.body == b"retry: %d\n\n" % RETRY_MS
    assert client.complete
    assert left == []


async def test_head_sends_headers_only() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"

    client = Client()
    await response(body())({**SCOPE, "method": "HEAD"}, client.receive, client.send)
    assert [m["type"] for m in client.sent] == ["http.response.start", "http.response.body"]
    assert client.body == b""


async def test_a_stream_runs_one_watcher_task() -> None:
    before = tasks_left()
    client = Client()
    call = await started(response(stalled()), client)
    # The client's disconnect is watched by a task; the stream runs in the caller's.
    assert len(tasks_left() - before - {call}) == 1
    client.gone.set()
    await asyncio.wait_for(call, 2)
    await settle()
    assert tasks_left() == before


async def test_a_send_slower_than_the_send_timeout_fails_and_closes_the_body() -> None:
    cleaned = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"data: first\n\n"
            yield b"data: second\n\n"
        finally:
            cleaned.set()

    client = Client()

    async def stuck(message: dict[str, Any]) -> None:
        await client.send(message)
        if message.get("body"):
            await asyncio.sleep(60)  # the client stopped reading

    stream = EventStreamResponse(body(), send_timeout=0.1)
    with pytest.raises(SendTimeoutError):
        await asyncio.wait_for(stream(SCOPE, client.receive, stuck), 2)
    assert cleaned.is_set()
    assert b"second" not in client.body


async def test_a_timeout_raised_by_send_itself_is_not_a_send_timeout() -> None:
    async def send(message: dict[str, Any]) -> None:
        if message.get("body"):
            raise TimeoutError("the transport's own")

    async def body() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"

    client = Client()
    with pytest.raises(TimeoutError, match="the transport's own") as raised:
        await response(body())(SCOPE, client.receive, send)
    assert not isinstance(raised.value, SendTimeoutError)
