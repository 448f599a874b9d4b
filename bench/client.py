"""A minimal HTTP/1.1 keep-alive client for the load generator.

One `asyncio.Protocol` per connection, one request at a time: it parses the
status line, `content-length` or chunked bodies, and notes when a marker (the
first content event of a stream) first shows up. No header objects, no
per-event parsing: the load generator should cost far less CPU than the server
it measures.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    first_marker: float | None  # perf_counter when the marker first arrived
    done: float  # perf_counter when the body was complete


class HttpError(Exception):
    """The connection broke, timed out or sent something unreadable."""


class Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.will_close = False
        self._reset()

    def _reset(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Reply] | None = None
        self._status = 0
        self._in_head = True
        self._chunked = False
        self._remaining = 0  # content-length left, or -1 when waiting for a chunk size
        self._parts: list[bytes] = []
        self._marker = b""
        self._tail = b""
        self._first: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(cls, host, port)
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(f"connection closed{f' ({exc})' if exc else ''}")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def request(
        self, data: bytes, marker: bytes = b"", timeout: float = 60.0
    ) -> asyncio.Future[Reply]:
        """Send one request; the future resolves with the whole reply."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Reply] = loop.create_future()
        if self.closed or self.will_close or self.transport is None:
            waiter.set_exception(HttpError("connection closed"))
            return waiter
        self._reset()
        self._waiter = waiter
        self._marker = marker
        self._timer = loop.call_later(timeout, self._fail, f"timeout after {timeout:g} s")
        self.transport.write(data)
        return waiter

    def _fail(self, why: str) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(HttpError(why))
            if self._timer is not None:
                self._timer.cancel()
            self.close()
        self._waiter = None

    def _finish(self) -> None:
        waiter = self._waiter
        if self._timer is not None:
            self._timer.cancel()
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(
                Reply(self._status, b"".join(self._parts), self._first, time.perf_counter())
            )

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            return  # nothing asked: ignore (a late byte after a timeout)
        self._buffer += data
        try:
            self._parse()
        except (ValueError, IndexError) as exc:
            self._fail(f"unreadable response: {exc}")

    def _body(self, payload: bytes) -> None:
        self._parts.append(payload)
        if self._first is None and self._marker:
            window = self._tail + payload
            if self._marker in window:
                self._first = time.perf_counter()
            self._tail = payload[-len(self._marker) :]

    def _parse(self) -> None:
        buf = self._buffer
        if self._in_head:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            del buf[: end + 4]
            self._status = int(head[9:12])
            self._in_head = False
            self._chunked = b"transfer-encoding: chunked" in head
            self.will_close = b"connection: close" in head
            self._remaining = -1
            at = head.find(b"content-length:")
            if not self._chunked and at >= 0:
                stop = head.find(b"\r\n", at)
                self._remaining = int(head[at + 15 : stop if stop >= 0 else None])
            elif not self._chunked:
                self._remaining = 0
        if not self._chunked:
            if len(buf) >= self._remaining:
                self._body(bytes(buf[: self._remaining]))
                del buf[: self._remaining]
                self._finish()
            return
        while True:
            if self._remaining < 0:
                line_end = buf.find(b"\r\n")
                if line_end < 0:
                    return
                size = int(bytes(buf[:line_end]).split(b";")[0], 16)
                if size == 0:  # the last chunk, then (no trailers expected) a CRLF
                    if len(buf) >= line_end + 4:
                        del buf[: line_end + 4]
                        self._finish()
                    return
                del buf[: line_end + 2]
                self._remaining = size
            if len(buf) < self._remaining + 2:
                return
            self._body(bytes(buf[: self._remaining]))
            del buf[: self._remaining + 2]
            self._remaining = -1
