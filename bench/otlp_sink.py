"""A tiny OTLP/HTTP sink for `python -m bench --tracing`: accepts every
`POST /v1/traces` with 200 and an empty `ExportTraceServiceResponse` (zero
bytes of protobuf), decodes nothing, and counts requests and bytes
(`GET /stats`). Raw asyncio, HTTP/1.1 keep-alive, so that what the benchmark
measures is agentd's side of tracing, not a collector's.

Run alone: `python -m bench.otlp_sink --port 4318`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

import orjson

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"


class Counts:
    requests = 0
    bytes = 0


class SinkConnection(asyncio.Protocol):
    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            self._answer(head.split(" ", 2)[1] if " " in head else "/", length)

    def _answer(self, path: str, length: int) -> None:
        assert self.transport is not None
        if path.startswith("/stats"):
            body = orjson.dumps({"requests": self.counts.requests, "bytes": self.counts.bytes})
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            )
            self.transport.write(head.encode() + b"\r\n\r\n" + body)
            return
        self.counts.requests += 1
        self.counts.bytes += length
        self.transport.write(OK)


async def serve(host: str, port: int) -> None:
    counts = Counts()
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: SinkConnection(counts), host, port, backlog=1024, reuse_address=True
    )
    print(f"listening {listener.sockets[0].getsockname()[1]}", flush=True)
    async with listener:
        await listener.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.otlp_sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
