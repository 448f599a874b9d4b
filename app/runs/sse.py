"""A run's events as Server-Sent Events: `event_stream` sends what the run
service's `follow` yields (replay by seq, then the live tail), with a `: ping`
comment when nothing was sent for `ping` seconds (`follow`'s waits are bounded,
so an idle stream wakes up to send it: no timer or task per stream for it).

What goes on the wire is a `Translation` of the stored frames: the native
events as stored (`NativeEvents`), or a protocol adapter's own format (AG-UI,
the Vercel AI SDK's UI message stream), over the same follow and the same
response.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from typing import Any, Protocol

import anyio
from sse_starlette import EventSourceResponse
from sse_starlette.sse import (
    AppStatus,
    SendTimeoutError,
    _ensure_watcher_started_on_this_loop,
    _get_shutdown_state,
)
from starlette.types import Message, Receive, Scope, Send

from app.engine.events import CONTENT_EVENTS
from app.runs.service import RunService
from app.worker.bus import Frame

RETRY_MS = 2000
PING = b": ping\n\n"
SEND_TIMEOUT = 30.0
SHUTDOWN_GRACE = 2.0  # longer than the slowest wait inside `follow`
MAX_SEQ = 2**31 - 1  # the largest seq the column holds (INTEGER on PostgreSQL)


def parse_last_event_id(header: str | None, after: int | None) -> int:
    """`?after=` wins over `Last-Event-ID`; anything unparsable means from the start,
    anything past the largest possible seq means after the last event."""
    if after is not None:
        return after
    if header:
        try:
            return min(max(int(header.strip()), 0), MAX_SEQ)
        except ValueError:
            return 0
    return 0


class Translation(Protocol):
    """How a protocol writes a run's stored frames: what goes before the first
    batch, what each batch becomes (empty bytes: nothing to send), and what ends
    a stream that reached the run's pause or end (not a shutdown's cut). A
    translation that has written all it will sets `done`: the stream ends there,
    before the run does."""

    done: bool

    def opening(self) -> bytes: ...

    async def batch(self, frames: list[Frame]) -> bytes: ...

    def closing(self) -> bytes: ...


class NativeEvents:
    """The native stream: each stored event as it is, `id` = seq, `event` = name."""

    __slots__ = ("content_only", "done")

    def __init__(self, content_only: bool = False) -> None:
        self.content_only = content_only
        self.done = False

    def opening(self) -> bytes:
        return b"retry: %d\n\n" % RETRY_MS

    async def batch(self, frames: list[Frame]) -> bytes:
        if self.content_only:
            return b"".join(frame.sse for frame in frames if frame.event in CONTENT_EVENTS)
        return b"".join(frame.sse for frame in frames)

    def closing(self) -> bytes:
        return b""


class _Drain:
    """One stream in sse-starlette's set of shutdown events: the library's one
    shutdown poller per event loop calls `set()` on each when the server stops."""

    __slots__ = ("set",)

    def __init__(self, on_shutdown: Callable[[], None]) -> None:
        self.set = on_shutdown


class _Unshared:
    """An `async with` that holds nothing: the send lock of a response with one sender."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_: object) -> None:
        return None


_UNSHARED = _Unshared()


class RunEventsResponse(EventSourceResponse):
    """sse-starlette's response, without a task group or a task per watcher.

    The library runs every response in an anyio task group of three tasks (the
    stream, the client's disconnect, the server's shutdown), the first to end
    cancelling the others. That group was most of what a short stream cost
    (measured in process: about 0.45 ms of CPU per six-part response, 0.24 ms
    with the watchers as plain tasks).
    Here the stream runs in the request's own task; the disconnect watcher is a
    plain asyncio task, and shutdown reaches the stream through the library's
    own poller (one per event loop), which calls back instead of waking a task
    per stream. What ends a stream is the same: the body's end, the client
    leaving, or shutdown (the shutdown event set, then the stream cancelled
    after the grace period). Each send has the library's timeout
    (`SendTimeoutError`), as an asyncio timeout rather than an anyio cancel
    scope. HEAD, pings and push senders take the library's own path.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"].upper() == "HEAD"
            or self.ping_interval
            or self.data_sender_callable is not None
        ):
            await super().__call__(scope, receive, send)
            return
        stream = asyncio.current_task()
        assert stream is not None  # an ASGI app runs in a task
        loop = asyncio.get_running_loop()
        cancelled = False  # by a watcher: the stream ends normally
        streaming = True
        grace: asyncio.TimerHandle | None = None

        def stop(_: object = None) -> None:
            # Callbacks run later: the stream may have ended meanwhile.
            nonlocal cancelled
            if streaming and not cancelled:
                cancelled = True
                stream.cancel()

        def shutdown() -> None:
            nonlocal grace
            if not streaming or grace is not None or cancelled:
                return
            if self._shutdown_event is not None:
                self._shutdown_event.set()
            grace = loop.call_later(self._shutdown_grace_period, stop)

        drain = _Drain(shutdown)
        drains: set[Any] = _get_shutdown_state().events  # anyio Events, or what has `set()`
        drains.add(drain)
        _ensure_watcher_started_on_this_loop()
        if AppStatus.should_exit:
            shutdown()
        # Nothing else sends on this response (no ping task, no push sender): the
        # library's send lock, an anyio lock with a checkpoint, guards nothing here.
        self._send_lock = _UNSHARED  # type: ignore[assignment]  # the same `async with`
        disconnect = loop.create_task(self._listen_for_disconnect(receive))
        disconnect.add_done_callback(stop)
        try:
            await self._stream_response(send)
        except asyncio.CancelledError:
            # Swallowed when a watcher asked for it, unless it also came from outside.
            if not cancelled or stream.uncancel() > 0:
                raise
        finally:
            streaming = False
            drains.discard(drain)
            if grace is not None:
                grace.cancel()
            disconnect.remove_done_callback(stop)
            disconnect.cancel()
        if disconnect.done() and not disconnect.cancelled():
            error = disconnect.exception()
            if error is not None:
                raise error
        if self.background is not None:
            await self.background()

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        timeout = asyncio.timeout(self.send_timeout)
        try:
            async with timeout:
                await send(message)
        except TimeoutError:
            if timeout.expired():
                raise SendTimeoutError() from None
            raise


def event_stream(
    runs: RunService,
    run_id: str,
    after: int,
    *,
    ping: float,
    content_only: bool = False,
    on_disconnect: Callable[[], None] | None = None,
    translation: Translation | None = None,
    headers: Mapping[str, str] | None = None,
) -> RunEventsResponse:
    """The run's events after `after` as an SSE response: by default `id` = seq,
    `event` = name and a retry hint (`NativeEvents`), else what `translation`
    makes of them; a `: ping` comment after `ping` seconds with nothing sent
    (`follow`'s empty batches are the moments to check). `on_disconnect` is
    called when the client leaves before the end.

    When the server shuts down, sse-starlette sets `shutdown` and `follow` ends
    within SHUTDOWN_GRACE: the stream closes cleanly and the client re-attaches
    elsewhere with Last-Event-ID."""
    shutdown = anyio.Event()
    batches = runs.follow(run_id, after, stopping=shutdown.is_set, idle=ping)
    wire = translation if translation is not None else NativeEvents(content_only)

    async def body() -> AsyncIterator[bytes]:
        finished = False
        try:
            opening = wire.opening()
            if opening:
                yield opening
            sent_at = time.monotonic()
            async with aclosing(batches):
                async for batch in batches:
                    # One write per batch: fewer sends for the same bytes.
                    data = await wire.batch(batch) if batch else b""
                    if data:
                        yield data
                        sent_at = time.monotonic()
                    elif time.monotonic() - sent_at >= ping:
                        yield PING
                        sent_at = time.monotonic()
                    if wire.done:
                        break
            finished = True
            if not shutdown.is_set():
                closing = wire.closing()
                if closing:
                    yield closing
        finally:
            if not finished and not shutdown.is_set() and on_disconnect is not None:
                on_disconnect()

    return RunEventsResponse(
        body(),
        ping=0,  # the body sends its own, only when idle
        send_timeout=SEND_TIMEOUT,
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE,
        headers={"X-Accel-Buffering": "no", **(headers or {})},
    )
