"""Fixtures for the frontend protocols: agentd served on 127.0.0.1 (with a fake
OpenAI server for scripted replies, and a tool that changes the session's
state), and the official JavaScript clients run with node against it
(`tests/js`, installed from its lock file by `npm ci`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.js_clients import js_clients as installed_js_clients
from tests.runs.conftest import LiveServer
from tests.sse_client import iter_sse

AGENTS: list[dict[str, Any]] = [
    {"id": "echo", "model": "test:echo"},
    {"id": "slow", "model": "test:echo", "model_settings": {"chunk_delay": 0.05}},
    {"id": "cart", "model": "test:tools", "tools": ["add_to_cart"]},
    {
        "id": "guarded",
        "model": "test:tools",
        "tools": [{"name": "add_to_cart", "requires_confirmation": True}],
    },
    {"id": "tools", "model": "test:tools"},  # its tools come with each request
    {
        "id": "located",
        "model": "test:tools",
        "tools": [{"type": "client", "name": "get_location", "parameters": {"type": "object"}}],
    },
    {"id": "failing", "model": "test:echo", "model_settings": {"fail": "the model is down"}},
    {"id": "gpt", "model": "openai:gpt-test"},
]
LOCATION_TOOL = {
    "name": "get_location",
    "description": "Where the user is.",
    "parameters": {"type": "object", "properties": {"precise": {"type": "boolean"}}},
}


@pytest.fixture(scope="session")
def js_clients() -> Path:
    """tests/js with its packages installed."""
    return installed_js_clients()


@pytest.fixture
def over_http_settings() -> dict[str, Any]:
    return {"tool_modules": ["tests.frontends.frontend_tools"]}


@pytest.fixture
async def served(over_http: LiveServer) -> AsyncIterator[LiveServer]:
    """`over_http` with the AGENTS defined."""
    async with over_http.client() as client:
        for agent in AGENTS:
            created = await client.post("/v1/agents", json=agent)
            assert created.status_code == 201, created.text
    yield over_http


async def node(js_clients: Path, script: str, scenario: dict[str, Any]) -> dict[str, Any]:
    """Run `tests/js/<script>` with the scenario; what it printed, as JSON."""
    process = await asyncio.create_subprocess_exec(
        "node",
        str(js_clients / script),
        json.dumps(scenario),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    result: dict[str, Any] = json.loads(out)
    return result


async def wait_for_content(client: httpx.AsyncClient, run_id: str) -> None:
    """Return once the run has streamed some of its answer (read natively)."""
    async with asyncio.timeout(20):
        async with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
            async for message in iter_sse(response):
                if message.event == "RunContent":
                    return
