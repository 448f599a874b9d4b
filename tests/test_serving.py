"""The serving loop: uvloop with connections accepted in batches (app/serving.py)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop

from app import serving

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def run_on(factory: Callable[[], asyncio.AbstractEventLoop], main: Awaitable[T]) -> T:
    loop = factory()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()


class Echo(asyncio.Protocol):
    made: list[Echo]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.made.append(self)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


def echo_factory() -> tuple[list[Echo], Callable[[], Echo]]:
    made: list[Echo] = []

    def factory() -> Echo:
        protocol = Echo()
        protocol.made = made
        return protocol

    return made, factory


def connect_many(port: int, count: int) -> list[socket.socket]:
    """`count` connections the kernel completes before the server accepts them."""
    clients = []
    for _ in range(count):
        client = socket.socket()
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            client.connect(("127.0.0.1", port))
        clients.append(client)
    time.sleep(0.2)  # the handshakes finish in the kernel; the loop is not running
    return clients


async def accepted_within_turns(turns: int, count: int = 200) -> int:
    """How many of `count` waiting connections the loop's server accepts within
    `turns` turns of the event loop."""
    loop = asyncio.get_running_loop()
    made, factory = echo_factory()
    server = await loop.create_server(factory, "127.0.0.1", 0, backlog=2048)
    port = server.sockets[0].getsockname()[1]
    clients = connect_many(port, count)
    try:
        for _ in range(turns):
            await asyncio.sleep(0)
        return len(made)
    finally:
        for client in clients:
            client.close()
        server.close()
        await server.wait_closed()


def test_a_burst_of_connections_is_accepted_in_a_few_turns() -> None:
    assert run_on(serving.new_event_loop, accepted_within_turns(5)) == 200


def test_plain_uvloop_accepts_one_connection_per_turn() -> None:
    # Why app.serving exists: libuv takes one connection per turn of the loop.
    assert run_on(uvloop.new_event_loop, accepted_within_turns(5)) <= 10


async def echo_round_trips(count: int) -> list[bytes]:
    loop = asyncio.get_running_loop()
    _, factory = echo_factory()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    assert isinstance(server, serving.BatchAcceptServer)
    assert server.is_serving()
    port = server.sockets[0].getsockname()[1]

    async def one(index: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping %d" % index)
        reply = await asyncio.wait_for(reader.readexactly(len(b"ping %d" % index)), 5)
        writer.close()
        return reply

    try:
        return await asyncio.gather(*(one(index) for index in range(count)))
    finally:
        server.close()
        await server.wait_closed()


def test_accepted_connections_carry_data_both_ways() -> None:
    replies = run_on(serving.new_event_loop, echo_round_trips(50))
    assert replies == [b"ping %d" % index for index in range(50)]


async def refused_after_close() -> tuple[bool, bool]:
    loop = asyncio.get_running_loop()
    _, factory = echo_factory()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        refused = True
    else:
        writer.close()
        refused = False
    return server.is_serving(), refused


def test_a_closed_server_stops_listening() -> None:
    serving_after, refused = run_on(serving.new_event_loop, refused_after_close())
    assert serving_after is False
    assert refused is True


async def serves_only_once_started() -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    made, factory = echo_factory()
    server = await loop.create_server(factory, "127.0.0.1", 0, start_serving=False)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        await server.start_serving()
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if made:
                break
            await asyncio.sleep(0.01)
        writer.close()
        return len(made), port
    finally:
        server.close()
        await server.wait_closed()


def test_start_serving_false_listens_only_when_started() -> None:
    made, _ = run_on(serving.new_event_loop, serves_only_once_started())
    assert made == 1


class OutOfDescriptorsOnce:
    """A listener whose first accept fails as when the process has no descriptor
    left; later ones reach the real socket."""

    def __init__(self, real: socket.socket) -> None:
        self.real = real
        self.calls = 0

    def fileno(self) -> int:
        return self.real.fileno()

    def accept(self) -> tuple[socket.socket, Any]:
        self.calls += 1
        if self.calls == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        return self.real.accept()


async def pauses_when_out_of_descriptors() -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    made, factory = echo_factory()
    server = await loop.create_server(factory, "127.0.0.1", 0)
    assert isinstance(server, serving.BatchAcceptServer)
    port = server.sockets[0].getsockname()[1]
    server._accept(OutOfDescriptorsOnce(server._listeners[0]))  # type: ignore[arg-type]
    _, writer = await asyncio.open_connection("127.0.0.1", port)  # the kernel completes it
    try:
        for _ in range(20):
            await asyncio.sleep(0)
        during_pause = len(made)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if made:
                break
        return during_pause, len(made)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


def test_running_out_of_descriptors_pauses_accepting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving, "ACCEPT_RETRY", 0.2)
    during_pause, after = run_on(serving.new_event_loop, pauses_when_out_of_descriptors())
    assert (during_pause, after) == (0, 1)


def test_uvicorn_serves_agentd_on_the_batch_loop(tmp_path: Path) -> None:
    """The command the Makefile and the Dockerfile run: a real uvicorn with
    `--loop app.serving:new_event_loop` answers requests."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/serving.db",
        "API_KEYS": "",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--loop", "app.serving:new_event_loop",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and body is None:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/agents", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.1)
        assert body is not None, "the server did not answer within 60 s"
        assert [agent["id"] for agent in body["data"]] == ["demo"]
    finally:
        proc.terminate()
        proc.wait(30)
