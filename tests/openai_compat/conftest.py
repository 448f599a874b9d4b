"""Fixtures for the OpenAI-compatible routes: a real uvicorn on 127.0.0.1 with
agents to call, and the official `openai` client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

from tests.conftest import make_settings
from tests.runs.conftest import LiveServer, serving

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "people": {"type": "integer"}},
    "required": ["city", "people"],
    "additionalProperties": False,
}
AGENTS: list[dict[str, Any]] = [
    {"id": "echo", "model": "test:echo"},
    # Calls each tool it is given once, then says how many it called.
    {"id": "tools", "model": "test:tools"},
    # 50 ms between words: a run that is still going when the test acts.
    {"id": "slow", "model": "test:echo", "model_settings": {"chunk_delay": 0.05}},
    {"id": "broken", "model": "test:echo", "model_settings": {"fail": "the model is down"}},
]
LONG = " ".join(f"w{index}" for index in range(40))  # 2 s of words from `slow`


async def add_agents(server: LiveServer) -> None:
    async with server.client() as http:
        for agent in AGENTS:
            created = await http.post("/v1/agents", json=agent)
            assert created.status_code == 201, created.text


@pytest.fixture
async def served(database_url: str, db_engine: object) -> AsyncIterator[LiveServer]:
    async with serving(make_settings(database_url)) as server:
        await add_agents(server)
        yield server


@pytest.fixture
async def oai(served: LiveServer) -> AsyncIterator[AsyncOpenAI]:
    # No retries: a test sees the first answer.
    client = AsyncOpenAI(base_url=f"{served.url}/v1", api_key="sk-any", max_retries=0)
    async with client:
        yield client


@pytest.fixture
async def http(served: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with served.client() as client:
        yield client
