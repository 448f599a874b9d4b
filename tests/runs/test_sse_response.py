"""The SSE response of run streams: what ends a stream, and what it leaves behind.

Driven as an ASGI app directly, so each ending can be timed exactly; the live
server tests in test_streaming.py cover the same endings over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from sse_starlette.sse import AppStatus, SendTimeoutError, _get_shutdown_state

from app.runs.sse import RunEventsResponse

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
        return bool(self.sent) and self.sent[-1] == {
            "type": "http.response.body",
            "body": b"",
            "more_body": False,
        }


def tasks_left() -> set[asyncio.Task[Any]]:
    """Tasks still running, besides this test's and the library's one shutdown poller."""
    return {
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task()
        and not t.done()
        and t.get_coro().__qualname__ != "_shutdown_watcher"  # type: ignore[union-attr]
    }


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def stalled() -> AsyncIterator[bytes]:
    """A body that sends one event, then nothing for a minute."""
    yield b"data: first\n\n"
    await asyncio.sleep(60)


async def started(stream: RunEventsResponse, client: Client) -> asyncio.Task[None]:
    """The response running in a task of its own, once its first event is sent."""
    call = asyncio.create_task(stream(SCOPE, client.receive, client.send))
    await client.streaming.wait()
    return call


def response(body: AsyncIterator[bytes], **options: Any) -> RunEventsResponse:
    options.setdefault("shutdown_event", anyio.Event())
    return RunEventsResponse(body, ping=0, send_timeout=5, **options)


async def test_the_body_ends_the_stream_and_its_watchers() -> None:
    async def body() -> AsyncIterator[bytes]:
        for word in (b"a", b"b", b"c"):
            yield b"data: %s\n\n" % word

    before = tasks_left()
    client = Client()
    await response(body(), headers={"X-Accel-Buffering": "no"})(SCOPE, client.receive, client.send)
    assert client.sent[0]["type"] == "http.response.start"
    headers = dict(client.sent[0]["headers"])
    assert headers[b"content-type"].startswith(b"text/event-stream")
    assert headers[b"cache-control"] == b"no-store"
    assert client.body == b"data: a\n\ndata: b\n\ndata: c\n\n"
    assert client.complete
    await settle()
    assert tasks_left() == before  # both watchers gone


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


async def test_shutdown_sets_the_event_and_the_body_ends_within_the_grace() -> None:
    shutdown = anyio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        await shutdown.wait()
        yield b"data: bye\n\n"

    client = Client()
    call = await started(response(body(), shutdown_event=shutdown, shutdown_grace_period=5), client)
    AppStatus.should_exit = True
    try:
        await asyncio.wait_for(call, 3)  # the library polls for shutdown every 0.5 s
    finally:
        AppStatus.should_exit = False
    assert client.body.endswith(b"data: bye\n\n")
    assert client.complete


async def test_shutdown_cancels_a_body_that_outlasts_the_grace() -> None:
    client = Client()
    call = await started(response(stalled(), shutdown_grace_period=0.2), client)
    AppStatus.should_exit = True
    try:
        await asyncio.wait_for(call, 3)
    finally:
        AppStatus.should_exit = False
    assert not client.complete


async def test_head_sends_headers_only() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"

    client = Client()
    await response(body())({**SCOPE, "method": "HEAD"}, client.receive, client.send)
    assert [m["type"] for m in client.sent] == ["http.response.start", "http.response.body"]
    assert client.body == b""


async def test_a_stream_runs_one_watcher_task_and_leaves_no_shutdown_registration() -> None:
    drains = _get_shutdown_state().events
    before, registered = tasks_left(), set(drains)
    client = Client()
    call = await started(response(stalled()), client)
    # The client's disconnect is watched by a task; shutdown reaches the stream
    # through the library's one poller.
    assert len(tasks_left() - before - {call}) == 1
    assert len(drains - registered) == 1
    client.gone.set()
    await asyncio.wait_for(call, 2)
    await settle()
    assert tasks_left() == before
    assert set(drains) == registered


async def test_a_stream_started_during_shutdown_ends_after_the_grace() -> None:
    shutdown = anyio.Event()
    client = Client()
    AppStatus.should_exit = True
    try:
        call = await started(
            response(stalled(), shutdown_event=shutdown, shutdown_grace_period=0.2), client
        )
        assert shutdown.is_set()
        await asyncio.wait_for(call, 1)  # no poll needed: it started after the signal
    finally:
        AppStatus.should_exit = False
    assert not client.complete


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

    stream = RunEventsResponse(body(), ping=0, send_timeout=0.1)
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
