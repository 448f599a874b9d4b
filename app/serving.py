"""The event loop agentd is served on: uvloop, accepting new connections in batches.

libuv, under uvloop, accepts one connection per turn of the event loop (libuv
PR #3696: level-triggered polling brings the next one on the next turn). A
busy server's turn is long, so a burst of new connections waits in the
kernel's accept queue, for seconds when many clients connect at once, while
the server spends that time on the few streams it accepted instead of on all
of them. asyncio's own loop accepts up to `backlog` connections each time the
listening socket is ready; `Loop` does the same on uvloop, and hands each
connection to uvloop's transport (`connect_accepted_socket`) as libuv would.

Serve with `uvicorn app.main:app --loop app.serving:new_event_loop` (the
Makefile, the Dockerfile and the benchmark do). TLS servers keep uvloop's own
accept path.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import uvloop

log = logging.getLogger("agentd.serving")

# Out of descriptors or memory: stop accepting for a moment, as asyncio does.
ACCEPT_RETRY = 1.0
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class Loop(uvloop.Loop):
    """uvloop's loop whose `create_server` servers (TCP, without TLS) accept in batches."""

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: ProtocolFactory,
        host: Any = None,
        port: Any = None,
        *,
        ssl: Any = None,
        backlog: int = 100,
        start_serving: bool = True,
        **kwargs: Any,
    ) -> asyncio.AbstractServer:
        # uvloop resolves, creates and binds the sockets, and owns them; it never
        # listens on them here (start_serving=False): the batch server does.
        inner = await super().create_server(
            protocol_factory,
            host,
            port,
            ssl=ssl,
            backlog=backlog,
            start_serving=False,
            **kwargs,
        )
        if ssl is not None:
            if start_serving:
                await inner.start_serving()
            return inner
        server = BatchAcceptServer(self, inner, protocol_factory, backlog)
        if start_serving:
            await server.start_serving()
        return server


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop factory for `uvicorn --loop app.serving:new_event_loop`."""
    return Loop()


class BatchAcceptServer(asyncio.AbstractServer):
    """Listens on the sockets uvloop bound for `inner` and accepts up to `backlog`
    connections each time one is ready, each handed to uvloop as accepted."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        inner: asyncio.AbstractServer,
        protocol_factory: ProtocolFactory,
        backlog: int,
    ) -> None:
        self._loop = loop
        self._inner = inner
        self._protocol_factory = protocol_factory
        self._backlog = max(backlog, 1)
        bound = getattr(inner, "sockets", None) or ()
        # Our own descriptor of each bound socket: uvloop closes its own.
        self._listeners = [socket.socket(fileno=os.dup(sock.fileno())) for sock in bound]
        self._serving = False
        self._closed = False
        self._starting: set[asyncio.Task[Any]] = set()

    @property
    def sockets(self) -> tuple[Any, ...]:
        return tuple(self._inner.sockets)  # type: ignore[attr-defined]

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if self._serving or self._closed:
            return
        for listener in self._listeners:
            listener.setblocking(False)
            listener.listen(self._backlog)
            self._loop.add_reader(listener.fileno(), self._accept, listener)
        self._serving = True

    async def serve_forever(self) -> None:
        await self.start_serving()
        await self._loop.create_future()  # until cancelled

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._serving = False
        for listener in self._listeners:
            self._loop.remove_reader(listener.fileno())
            listener.close()
        self._inner.close()

    async def wait_closed(self) -> None:
        await self._inner.wait_closed()

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(self._backlog):
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return  # nothing more waiting
            except ConnectionAbortedError:
                continue  # the client gave up before it was accepted
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    log.warning("accepting a connection failed: %s", exc)
                    return  # tried again when the socket is next ready
                log.error("cannot accept connections (%s); retrying in %g s", exc, ACCEPT_RETRY)
                self._loop.remove_reader(listener.fileno())
                self._loop.call_later(ACCEPT_RETRY, self._resume, listener)
                return
            self._start(conn)

    def _resume(self, listener: socket.socket) -> None:
        if self._serving:
            self._loop.add_reader(listener.fileno(), self._accept, listener)

    def _start(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as uvloop does
        task = self._loop.create_task(self._connect(conn))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, conn)
        except Exception:
            log.warning("an accepted connection could not be set up", exc_info=True)
            conn.close()
