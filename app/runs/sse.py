"""A run's events as Server-Sent Events: `event_stream` sends what the run
service's `follow` yields (replay by seq, then the live tail), with a `: ping`
comment when nothing was sent for `ping` seconds (`follow`'s waits are bounded,
so an idle stream wakes up to send it: no timer or task per stream for it).
`translated_stream` does the same for a protocol adapter, in the protocol's
wire format (a `Translation` of the stored events).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import aclosing
from typing import Protocol

from sse_starlette.sse import AppStatus

from app.engine.events import CONTENT_EVENTS, TERMINAL_EVENTS
from app.runs.service import RunRef, RunService
from app.sse_response import EventStreamResponse, LastChunk
from app.worker.bus import Frame

RETRY_MS = 2000
PING = b": ping\n\n"
SEND_TIMEOUT = 30.0
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


def server_stopping() -> bool:
    """Whether the server is shutting down: sse-starlette wraps uvicorn's signal
    handler (`Server.handle_exit`) when imported and sets `AppStatus.should_exit`."""
    return AppStatus.should_exit


def event_stream(
    runs: RunService,
    run: RunRef,
    after: int,
    *,
    ping: float,
    content_only: bool = False,
    on_disconnect: Callable[[], None] | None = None,
) -> EventStreamResponse:
    """The run's events after `after` as an SSE response: `id` = seq, `event` =
    name, a retry hint, and a `: ping` comment after `ping` seconds with nothing
    sent (`follow`'s empty batches are the moments to check). `on_disconnect` is
    called when the client leaves before the end.

    When the server shuts down, `follow` ends at its next wake-up (its waits are
    bounded): the stream closes cleanly and the client re-attaches elsewhere with
    Last-Event-ID."""
    batches = runs.follow(run, after, stopping=server_stopping, idle=ping)

    async def body() -> AsyncIterator[bytes]:
        finished = False
        # The retry hint goes with the first frames (or the first ping): each
        # write is a send to the socket of its own.
        hint = b"retry: %d\n\n" % RETRY_MS
        try:
            sent_at = time.monotonic()
            async with aclosing(batches):
                async for batch in batches:
                    # One write per batch: fewer sends for the same bytes; the run's
                    # end goes with the end of the response.
                    ended = bool(batch) and batch[-1].event in TERMINAL_EVENTS
                    if content_only:
                        batch = [frame for frame in batch if frame.event in CONTENT_EVENTS]
                    if ended:
                        finished = True
                        yield LastChunk(hint + b"".join(frame.sse for frame in batch))
                        return
                    if batch:
                        yield hint + b"".join(frame.sse for frame in batch)
                    elif time.monotonic() - sent_at >= ping:
                        yield hint + PING
                    else:
                        continue
                    hint = b""
                    sent_at = time.monotonic()
            if hint:
                yield hint
            finished = True
        finally:
            if not finished and not server_stopping() and on_disconnect is not None:
                on_disconnect()

    return EventStreamResponse(body(), send_timeout=SEND_TIMEOUT)


class Translation(Protocol):
    """A protocol's wire format for one stream of a run's stored events: the bytes
    that open the stream, those of each batch of events (may be empty), and those
    that end it (`closing` may read the run; it also runs when the stream stops
    early, at shutdown). A translation that has written all its stream holds sets
    `done`: the stream ends there even when the run goes on (one protocol's run
    may be a part of a stored run, up to a pause)."""

    done: bool

    def opening(self) -> bytes: ...

    def frames(self, batch: list[Frame]) -> bytes: ...

    async def closing(self) -> bytes: ...


def translated_stream(
    runs: RunService,
    run: RunRef,
    after: int,
    translation: Translation,
    *,
    ping: float,
    headers: Mapping[str, str] | None = None,
) -> EventStreamResponse:
    """The run's events after `after`, as `translation` says them; pings and
    shutdown as in `event_stream`. `run` as `RunService.follow` takes it: a run
    the service just answered costs no read."""
    batches = runs.follow(run, after, stopping=server_stopping, idle=ping)

    async def body() -> AsyncIterator[bytes]:
        # The opening goes with the first frames, and the closing with the last
        # when the batch ends the stream: each write is a send of its own.
        pending = translation.opening()
        closed = False
        sent_at = time.monotonic()
        async with aclosing(batches):
            async for batch in batches:
                data = pending + translation.frames(batch) if batch else pending
                if translation.done or (batch and batch[-1].event in TERMINAL_EVENTS):
                    data += await translation.closing()
                    closed = True
                if closed:
                    if data:
                        yield LastChunk(data)
                    break
                if data:
                    yield data
                    pending, sent_at = b"", time.monotonic()
                elif time.monotonic() - sent_at >= ping:
                    yield PING
                    sent_at = time.monotonic()
        if not closed:
            data = pending + await translation.closing()
            if data:
                yield LastChunk(data)

    return EventStreamResponse(body(), send_timeout=SEND_TIMEOUT, headers=headers)
