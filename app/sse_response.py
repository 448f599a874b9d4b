"""The response that sends a stream of server-sent events: bytes already encoded as
SSE (frames, comments, retry hints), each sent as it comes.

A plain ASGI response of its own rather than a library's: the stream runs in the
request's own task, and one more task waits for the client's disconnect, which
cancels the stream (the body's cleanup runs, and the response ends without
error). Nothing else ends a stream from outside: its body decides when to end
(a body that knows which bytes are its last yields them as `LastChunk`: they go
with the end of the response, one send less),
server shutdown included (`follow` checks for it at every wake-up, and its waits
are bounded), and a send that takes longer than `send_timeout` fails with
`SendTimeoutError` (a client that stopped reading). HEAD gets the headers and
no stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

# Proxies must neither cache nor buffer an event stream.
STREAM_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}
_END: Message = {"type": "http.response.body", "body": b"", "more_body": False}


class LastChunk(bytes):
    """A body's last bytes: sent with the end of the response. The body yields
    nothing after them (it is closed once they are sent)."""


class SendTimeoutError(TimeoutError):
    """A send of the stream did not complete within the response's `send_timeout`."""


class EventStreamResponse(Response):
    """`text/event-stream` from an async iterator of SSE-encoded bytes."""

    media_type = "text/event-stream"

    def __init__(
        self,
        body: AsyncIterator[bytes],
        *,
        send_timeout: float,
        headers: Mapping[str, str] | None = None,
        status_code: int = 200,
        background: BackgroundTask | None = None,
    ) -> None:
        self.body_iterator = body
        self.send_timeout = send_timeout
        self.status_code = status_code
        self.background = background
        self._streaming = False  # a client leaving now cancels the stream
        self.init_headers({**STREAM_HEADERS, **(headers or {})})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.raw_headers,
        }
        if scope["method"].upper() == "HEAD":
            await self._send(send, start)
            await self._send(send, _END)
        else:
            await self._stream(receive, send, start)
        if self.background is not None:
            await self.background()

    async def _stream(self, receive: Receive, send: Send, start: Message) -> None:
        stream = asyncio.current_task()
        assert stream is not None  # an ASGI app runs in a task
        left = False
        self._streaming = True

        def client_left(_: object) -> None:
            # A callback runs later: the stream may have ended meanwhile.
            nonlocal left
            if self._streaming and not left:
                left = True
                stream.cancel()

        disconnect = asyncio.get_running_loop().create_task(_until_disconnect(receive))
        disconnect.add_done_callback(client_left)
        try:
            await self._send(send, start)
            if not await self._send_body(send):
                await self._send(send, _END)
        except asyncio.CancelledError:
            # Swallowed when the client's leaving asked for it, unless it also came
            # from outside.
            if not left or stream.uncancel() > 0:
                raise
        finally:
            self._streaming = False
            disconnect.remove_done_callback(client_left)
            disconnect.cancel()
        if disconnect.done() and not disconnect.cancelled():
            error = disconnect.exception()  # `receive` failed
            if error is not None:
                raise error

    async def _send_body(self, send: Send) -> bool:
        """Send the body's chunks; True when its `LastChunk` ended the response."""
        body = self.body_iterator
        try:
            async for chunk in body:
                last = type(chunk) is LastChunk
                if last:
                    # The response is complete once sent: a client leaving now
                    # cancels nothing (the body's cleanup runs as it closes).
                    self._streaming = False
                await self._send(
                    send, {"type": "http.response.body", "body": chunk, "more_body": not last}
                )
                if last:
                    return True
            return False
        finally:
            # A send that failed or was cancelled leaves the body suspended at a
            # `yield`: close it so that its cleanup runs now.
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _send(self, send: Send, message: Message) -> None:
        timeout = asyncio.timeout(self.send_timeout)
        try:
            async with timeout:
                await send(message)
        except TimeoutError:
            if timeout.expired():
                raise SendTimeoutError() from None
            raise


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
