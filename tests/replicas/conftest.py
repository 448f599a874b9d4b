"""Real server processes on one database: replicas, kills and restarts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import create_postgres_database, drop_postgres_database

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Replica:
    """`uvicorn app.main:app` in its own process."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.env = env
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.log = Path(env["AGENTD_LOG_DIR"]) / f"{name}-{self.port}.log"

    async def start(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = self.log.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "app.main:app",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--timeout-graceful-shutdown", "5", "--no-access-log",
            cwd=ROOT, env=self.env, stdout=log, stderr=log,
        )  # fmt: skip
        async with httpx.AsyncClient(base_url=self.url) as client:
            for _ in range(1200):  # a loaded machine takes a while to import and start
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become ready")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    async def wait(self) -> int:
        assert self.process is not None
        return await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=15)
            except TimeoutError:
                self.kill()
                await self.process.wait()

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        kwargs.setdefault("timeout", 30)
        return httpx.AsyncClient(base_url=self.url, **kwargs)


class Cluster:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.replicas: list[Replica] = []

    async def add(self, **overrides: str) -> Replica:
        env = {**self.env, **overrides}
        replica = Replica(env, f"replica{len(self.replicas)}")
        self.replicas.append(replica)
        await replica.start()
        return replica

    @property
    def count_file(self) -> str:
        return self.env["AGENTD_COUNT_FILE"]

    async def stop(self) -> None:
        await asyncio.gather(*(replica.stop() for replica in self.replicas))


def base_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "ANTHROPIC_", "DATABASE_", "AGENTD_"))
    }
    env.update(
        DATABASE_URL=database_url,
        TOOL_MODULES="tests.replicas.counting_tools",
        AGENTD_COUNT_FILE=str(tmp_path / "executions.txt"),
        AGENTD_LOG_DIR=str(tmp_path),
        LEASE_SECONDS="2",
        SWEEP_INTERVAL="0.5",
        SEED_DEMO_AGENT="false",
        LOG_LEVEL="warning",
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture
async def pg_cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    url = await create_postgres_database("agentd_replicas")
    cluster = Cluster(base_env(url, tmp_path))
    try:
        yield cluster
    finally:
        await cluster.stop()
        await drop_postgres_database(url)


@pytest.fixture
async def sqlite_cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    cluster = Cluster(base_env(f"sqlite+aiosqlite:///{tmp_path}/agentd.db", tmp_path))
    try:
        yield cluster
    finally:
        await cluster.stop()
