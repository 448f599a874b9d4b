"""MCP servers for the tests: the fake of tests/fakes/mcp_server.py over Streamable
HTTP (a process on 127.0.0.1 that a test may stop, replace and start again) and
over stdio (started by agentd itself), and agentd with both in MCP_SERVERS."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from tests.conftest import make_settings, served

ROOT = Path(__file__).resolve().parents[2]
FAKE = "tests.fakes.mcp_server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HttpFake:
    """`python -m tests.fakes.mcp_server http PORT` (or `garbage-http`), as a process."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "MCP_FAKE_LOG": str(log)}
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, mode: str = "http") -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", FAKE, mode, str(self.port), cwd=ROOT, env=self.env
        )
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the fake MCP server did not start")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def restart(self, mode: str = "http") -> None:
        await self.stop()
        await self.start(mode)


def stdio_server(log: Path, **extra: Any) -> dict[str, Any]:
    env = {"PYTHONPATH": str(ROOT), "MCP_FAKE_LOG": str(log)}
    return {"command": sys.executable, "args": ["-m", FAKE, "stdio"], "env": env, **extra}


def log_lines(log: Path, kind: str) -> list[str]:
    """The keys of the fake's `call` or `effect` lines."""
    if not log.exists():
        return []
    lines = [line.split() for line in log.read_text().splitlines() if line.strip()]
    return [parts[1] if len(parts) > 1 else "" for parts in lines if parts[0] == kind]


@pytest.fixture
def fake_log(tmp_path: Path) -> Path:
    return tmp_path / "mcp-calls.log"


@pytest.fixture
async def web(fake_log: Path) -> AsyncIterator[HttpFake]:
    server = HttpFake(fake_log)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def settings(database_url: str, web: HttpFake, fake_log: Path) -> Settings:
    """agentd with `web` (Streamable HTTP) and `local` (stdio) in MCP_SERVERS."""
    servers = {"web": {"url": web.url, "timeout": 5}, "local": stdio_server(fake_log, timeout=5)}
    return make_settings(database_url, mcp_servers=servers)


async def create_agent(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("model", "test:tools")
    response = await client.post("/v1/agents", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def run(client: httpx.AsyncClient, agent_id: str, text: str = "go") -> dict[str, Any]:
    response = await client.post(f"/v1/agents/{agent_id}/runs", json={"input": text})
    assert response.status_code == 200, response.text
    output: dict[str, Any] = response.json()
    return output


@asynccontextmanager
async def served_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """agentd with `settings`, and a client of it."""
    async with served(create_app(settings)) as application:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://agentd.test") as http:
            yield http


def children(command_part: str) -> list[int]:
    """This process's child processes whose command line holds `command_part`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{entry}/status").read_text()
            parent = next(line for line in status.splitlines() if line.startswith("PPid:"))
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if int(parent.split()[1]) == os.getpid() and command_part in command:
                found.append(int(entry))
    return found
