"""A fake OpenAI-compatible Chat Completions server that costs almost no CPU.

Raw asyncio (one `asyncio.Protocol` per connection, no framework), HTTP/1.1
keep-alive, every answer pre-encoded once per shape and reused, and one ticker
task for all streams: each tick writes the next chunk of every active stream,
instead of a sleep per stream. Answers `POST /v1/chat/completions` streamed
(role chunk, one content chunk per token, the finish reason, a usage chunk when
`stream_options.include_usage`, `data: [DONE]`) or as one JSON body. When the
request offers `tools` and no `tool` message follows the last user message, the
answer is ONE call of the first offered tool (arguments `{}`, or minimal values
for required parameters) instead of text.

`GET/POST /control` reads or changes the shape of answers (`tokens`,
`token_delay_ms`, `first_delay_ms`) and reports counters (`requests`,
`tool_calls`, `streams`, `active`). Run alone:
`python -m bench.fake --port 9000 --tokens 20 --token-delay-ms 0`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.fake_wire import Answer, Shape, build_answer, json_response, minimal_args, tool_answered


@dataclass(slots=True)
class Counters:
    requests: int = 0
    tool_calls: int = 0
    streams: int = 0
    errors: int = 0


@dataclass(slots=True)
class Pending:
    conn: FakeConnection
    parts: list[bytes]
    due: int
    pos: int = 0


@dataclass
class FakeServer:
    shape: Shape = field(default_factory=Shape)
    counters: Counters = field(default_factory=Counters)
    active: list[Pending] = field(default_factory=list)
    tick: int = 0
    _cache: dict[tuple[Any, ...], Answer] = field(default_factory=dict)
    _ticker: asyncio.Task[None] | None = None

    def answer(self, model: str, stream: bool, usage: bool, call: tuple[str, str] | None) -> Answer:
        shape = self.shape
        key = (shape.tokens, shape.token_delay_ms > 0, model, stream, usage, call)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = build_answer(shape, model, stream, usage, call)
        return found

    def tick_ms(self) -> float:
        return self.shape.token_delay_ms or self.shape.first_delay_ms

    def send(self, conn: FakeConnection, answer: Answer, body_tokens: int) -> None:
        """Write the head now and the parts on the ticker (or all now without delays)."""
        step = self.tick_ms()
        if step <= 0:
            conn.transport.write(answer.head + b"".join(answer.parts))
            conn.done()
            return
        if answer.head:
            conn.transport.write(answer.head)
        wait = math.ceil(self.shape.first_delay_ms / step)
        if len(answer.parts) == 1 and self.shape.token_delay_ms > 0:
            wait += body_tokens  # a whole answer at once (non-streaming): as late as its last token
        self.active.append(Pending(conn, answer.parts, self.tick + max(wait, 1)))
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._run_ticker())

    async def _run_ticker(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while self.active:
            deadline += self.tick_ms() / 1000
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                deadline = loop.time()  # behind: slip rather than burst
            self.tick += 1
            self.active = [p for p in self.active if not self._advance(p)]

    def _advance(self, pending: Pending) -> bool:
        """Write the next part if due; True when the stream is over."""
        transport = pending.conn.transport
        if transport.is_closing():
            return True
        if pending.due > self.tick:
            return False
        transport.write(pending.parts[pending.pos])
        pending.pos += 1
        if pending.pos < len(pending.parts):
            return False
        pending.conn.done()
        return True


class FakeConnection(asyncio.Protocol):
    """One client connection: parses requests one at a time (keep-alive)."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.buffer = bytearray()
        self.busy = False
        self.parsing = False
        self.close_after = False
        self.transport: asyncio.WriteTransport = None  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.busy:
            self._process()

    def done(self) -> None:
        """The response is out: close, or serve what is waiting."""
        self.busy = False
        if self.close_after:
            self.transport.close()
        elif self.buffer and not self.parsing:
            self._process()

    def _process(self) -> None:
        self.parsing = True
        try:
            self._parse()
        finally:
            self.parsing = False

    def _parse(self) -> None:
        while not self.busy and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    self.close_after = True
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, path, *_ = head[0].split(" ")
            self.busy = True
            self._route(method, path.split("?")[0], body)

    def _reply(self, status: int, obj: Any) -> None:
        self.transport.write(json_response(status, obj, self.close_after))
        self.done()

    def _route(self, method: str, path: str, body: bytes) -> None:
        server = self.server
        if path.endswith("/chat/completions") and method == "POST":
            self._complete(body)
        elif path == "/control":
            if method == "POST":
                changes = orjson.loads(body or b"{}")
                for key in ("tokens", "token_delay_ms", "first_delay_ms"):
                    if key in changes:
                        setattr(server.shape, key, type(getattr(server.shape, key))(changes[key]))
            c, s = server.counters, server.shape
            self._reply(
                200,
                {
                    "tokens": s.tokens,
                    "token_delay_ms": s.token_delay_ms,
                    "first_delay_ms": s.first_delay_ms,
                    "requests": c.requests,
                    "tool_calls": c.tool_calls,
                    "streams": c.streams,
                    "errors": c.errors,
                    "active": len(server.active),
                },
            )
        elif path.endswith("/models"):
            self._reply(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        elif path in ("/health", "/healthz"):
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    def _complete(self, body: bytes) -> None:
        server = self.server
        server.counters.requests += 1
        try:
            request = orjson.loads(body)
            messages = request["messages"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            server.counters.errors += 1
            self._reply(400, {"error": {"message": "bad request body", "type": "invalid_request"}})
            return
        call = None
        tools = request.get("tools")
        if tools and not tool_answered(messages):
            function = tools[0].get("function") or {}
            call = (function.get("name", "tool"), minimal_args(function.get("parameters")))
            server.counters.tool_calls += 1
        stream = bool(request.get("stream"))
        usage = bool((request.get("stream_options") or {}).get("include_usage"))
        server.counters.streams += stream
        answer = server.answer(str(request.get("model", "fake")), stream, usage, call)
        server.send(self, answer, 1 if call else server.shape.tokens)


async def serve(host: str, port: int, shape: Shape) -> None:
    server = FakeServer(shape=shape)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: FakeConnection(server), host, port, backlog=4096, reuse_address=True
    )
    bound = listener.sockets[0].getsockname()[1]
    print(f"listening {bound}", flush=True)
    async with listener:
        await listener.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fake", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--token-delay-ms", type=float, default=0.0)
    parser.add_argument("--first-delay-ms", type=float, default=0.0)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    shape = Shape(args.tokens, args.token_delay_ms, args.first_delay_ms)
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(serve(args.host, args.port, shape))
        return
    try:
        uvloop.run(serve(args.host, args.port, shape))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
