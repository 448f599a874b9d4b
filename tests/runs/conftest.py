"""Fixtures for runs: agents to run, and a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import event

from app.config import Settings
from app.main import create_app

SLOW = {"chunk_delay": 0.05}


class LiveServer:
    """The app served by uvicorn on 127.0.0.1 (a random port), in this event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: FastAPI | None = None
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> None:
        self.app = create_app(self.settings)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self.task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started:
                break
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self.task, timeout=20)
        self.server = None
        self.task = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, **kwargs)


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[LiveServer]:
    """The app served with `settings` for the block."""
    server = LiveServer(settings)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def live(settings: Settings, db_engine: object) -> AsyncIterator[LiveServer]:
    async with serving(settings) as server:
        yield server


@pytest.fixture
async def http(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with live.client() as client:
        yield client


async def make_agent(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"id": "echo", "model": "test:echo", **fields}
    response = await client.post("/v1/agents", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def post_enqueued(
    client: httpx.AsyncClient, agent_id: str, session_id: str, text: str
) -> httpx.Response:
    """A background run queued behind the session's active run."""
    return await client.post(
        f"/v1/agents/{agent_id}/runs",
        json={
            "input": text,
            "session_id": session_id,
            "multitask_strategy": "enqueue",
            "background": True,
        },
    )


class Statements(list[str]):
    """Every SQL statement an app sends while listening, whitespace collapsed."""

    def append(self, *args: Any) -> None:  # a before_cursor_execute listener
        super().append(" ".join(args[2].split()))


def statements(app: FastAPI) -> Statements:
    seen = Statements()
    event.listen(app.state.engine.sync_engine, "before_cursor_execute", seen.append)
    return seen


async def wait_status(
    client: httpx.AsyncClient, run_id: str, statuses: set[str], within: float = 10
) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            run: dict[str, Any] = (await client.get(f"/v1/runs/{run_id}")).json()
            if run["status"] in statuses:
                return run
            await asyncio.sleep(0.02)
