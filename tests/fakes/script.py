"""Scripted model servers: the reply queue, request recording and the uvicorn plumbing.

A fake server answers each request with the next queued `Reply` (or, when the
queue is empty, echoes the last user message) and records every request. The
wire formats live in `openai_server.py` and `anthropic_server.py`.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


@dataclass
class ToolCall:
    """A tool call the fake model makes; `arguments` is a dict or a raw JSON string."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None  # generated ("call_1", "toolu_1", ...) when None

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return orjson.dumps(self.arguments).decode()


@dataclass
class Reply:
    """One scripted answer.

    `text` and `reasoning` are streamed in word chunks (`chunks_of`), or in
    exactly the given pieces when lists. Tool-call arguments are streamed in
    pieces of `piece_size` characters. A `status` of 400 or more answers with
    the provider's error body (and `retry-after-ms: 10`, so SDK retries are
    fast); `error` with status 200 sends an error event mid-stream, after the
    text. `delay` seconds pass before each streamed event but the first.
    `raw` replaces the whole body, streamed or not, with these bytes (broken servers);
    a `CUT` among streamed frames drops the connection there, mid-body, and a
    `Wait(seconds)` pauses the stream there.
    """

    text: str | list[str] = ""
    reasoning: str | list[str] = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: tuple[int, int] = (10, 5)  # input, output tokens
    finish_reason: str | None = None  # default: stop / tool call, in the provider's words
    status: int = 200
    error: str | None = None
    delay: float = 0.0
    piece_size: int = 8
    headers: dict[str, str] = field(default_factory=dict)
    raw: list[bytes | Wait] | None = None

    @property
    def text_chunks(self) -> list[str]:
        return self.text if isinstance(self.text, list) else chunks_of(self.text)

    @property
    def reasoning_chunks(self) -> list[str]:
        return self.reasoning if isinstance(self.reasoning, list) else chunks_of(self.reasoning)

    @property
    def full_text(self) -> str:
        return "".join(self.text_chunks)

    def pieces(self, arguments: str) -> list[str]:
        size = self.piece_size
        return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]


def chunks_of(text: str) -> list[str]:
    """Word chunks that join back to `text`: "Hello big world" -> ["Hello ", "big ", "world"]."""
    return re.findall(r"\S+\s*|\s+", text)


def error_reply(status: int, message: str | None = None, **headers: str) -> Reply:
    """A reply that fails with `status` before streaming anything."""
    return Reply(status=status, error=message or f"fake error {status}", headers=headers)


@dataclass
class RecordedRequest:
    """One request as the fake server saw it. Header names are lower case."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    peer: tuple[str, int] | None = None  # the client's address: one per connection
    completed: bool = False  # the whole answer was sent
    aborted: bool = False  # the client went away mid-stream (and the server noticed)


SSEFrames = AsyncIterator[bytes]


class FakeModelServer:
    """A real HTTP server on 127.0.0.1 and a random free port, run by uvicorn.

    Use as `async with FakeOpenAIServer() as server:`; `server.base_url` is the
    address to give the SDK, `server.enqueue(...)` scripts the next answers and
    `server.requests` holds everything received, in order.
    """

    path: str = "/"

    def __init__(self, *replies: Reply) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[RecordedRequest] = []
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._port = 0

    # -- what tests use -------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        return self.origin

    def enqueue(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    def reset(self) -> None:
        self.replies.clear()
        self.requests.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        app = Starlette(routes=[Route(self.path, self._handle, methods=["POST"])])
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", ws="none",
            timeout_graceful_shutdown=1,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what went wrong
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None

    # -- what a wire format provides -----------------------------------------

    def stream(self, reply: Reply, body: dict[str, Any]) -> SSEFrames:
        raise NotImplementedError

    def complete(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def error_body(self, reply: Reply) -> dict[str, Any]:
        raise NotImplementedError

    def echo(self, body: dict[str, Any]) -> Reply:
        raise NotImplementedError

    # -- the handler ------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        body = orjson.loads(raw) if raw else None
        record = RecordedRequest(
            method=request.method,
            path=request.url.path,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            peer=(request.client.host, request.client.port) if request.client else None,
        )
        self.requests.append(record)
        reply = self.replies.popleft() if self.replies else self.echo(body or {})
        if reply.status >= 400:
            record.completed = True
            headers = {"retry-after-ms": "10", **reply.headers}
            return _json(self.error_body(reply), reply.status, headers)
        if not (body or {}).get("stream"):
            record.completed = True
            if reply.raw is not None:
                whole = b"".join(frame for frame in reply.raw if isinstance(frame, bytes))
                return Response(whole, 200, media_type="application/json")
            return _json(self.complete(reply, body or {}), 200, reply.headers)
        stream = _frames(reply.raw) if reply.raw is not None else self.stream(reply, body or {})
        frames = self._paced(reply, stream, record)
        return StreamingResponse(frames, media_type="text/event-stream", headers=reply.headers)

    async def _paced(self, reply: Reply, frames: SSEFrames, record: RecordedRequest) -> SSEFrames:
        try:
            first = True
            async for frame in frames:
                if reply.delay and not first:
                    await asyncio.sleep(reply.delay)
                first = False
                yield frame
        except BaseException:  # cancelled by Starlette when the client disconnects
            record.aborted = True
            raise
        record.completed = True


CUT = b"<the connection drops here>"


@dataclass(frozen=True)
class Wait:
    """A pause among a reply's raw frames."""

    seconds: float


async def _frames(raw: list[bytes | Wait]) -> SSEFrames:
    for frame in raw:
        if isinstance(frame, Wait):
            await asyncio.sleep(frame.seconds)
            continue
        if frame is CUT:
            # uvicorn closes the connection without the body's last chunk
            raise ConnectionAbortedError("the fake server dropped the connection")
        yield frame


def _json(payload: Any, status: int, headers: dict[str, str]) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event; `data` is JSON-encoded unless it is already bytes."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + payload + b"\n\n"


def last_text(content: Any) -> str:
    """The text of a message content: a string or a list of parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""
