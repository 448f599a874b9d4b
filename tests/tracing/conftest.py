"""Tracing fixtures: an OTLP/HTTP receiver in this process (real protobuf over
real HTTP), the OTEL_* environment pointing at it, and the app started on that
environment with its `openai:` models at `fake`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import make_settings, served
from tests.fakes import FakeOpenAIServer
from tests.fakes.otlp_receiver import OTLPReceiver


@pytest.fixture
async def receiver() -> AsyncIterator[OTLPReceiver]:
    async with OTLPReceiver() as started:
        yield started


def otel_environment(receiver: OTLPReceiver, **extra: str) -> dict[str, str]:
    """Spans to `receiver`, exported 20 ms after they end."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "20",
        "OTEL_SERVICE_NAME": "agentd-test",
        **extra,
    }


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch, receiver: OTLPReceiver) -> dict[str, str]:
    """This process's environment: only the OTEL_* variables of the test."""
    for key in list(os.environ):
        if key.startswith("OTEL_"):
            monkeypatch.delenv(key)
    env = otel_environment(receiver)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@contextlib.asynccontextmanager
async def started_app(
    database_url: str, fake: FakeOpenAIServer, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app on the current environment, with `openai:` at the fake server."""
    settings = make_settings(
        database_url,
        openai_base_url=fake.base_url,
        openai_api_key="sk-test",
        **overrides,
    )
    async with served(create_app(settings)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agentd.test") as client:
            yield app, client


@pytest.fixture
async def traced(
    otel_env: dict[str, str],
    database_url: str,
    db_engine: object,
    fake: FakeOpenAIServer,
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app, tracing to the receiver."""
    async with started_app(database_url, fake) as (_app, client):
        yield client


async def create_agent(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"id": "helper", "name": "Helper", "model": "openai:gpt-4o-mini", **fields}
    response = await client.post("/v1/agents", json=body)
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    return agent


async def run(
    client: httpx.AsyncClient,
    agent_id: str = "helper",
    headers: dict[str, str] | None = None,
    **body: Any,
) -> dict[str, Any]:
    """A blocking run; its RunOutput."""
    body.setdefault("input", "What time is it?")
    response = await client.post(f"/v1/agents/{agent_id}/runs", json=body, headers=headers)
    assert response.status_code == 200, response.text
    output: dict[str, Any] = response.json()
    return output
