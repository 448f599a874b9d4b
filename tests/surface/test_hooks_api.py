"""Hooks through the API: definitions name registered hooks (422 otherwise), users'
hooks come from TOOL_MODULES through `app.extensions`, runs show their events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.main import create_app
from tests.conftest import make_settings, served, snapshot
from tests.surface.conftest import MODULE


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, tool_modules=[MODULE])


@pytest.fixture
async def app(settings: Settings, db_engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    async with served(create_app(settings)) as application:
        yield application


async def _run(client: httpx.AsyncClient, agent_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/agents/{agent_id}/runs", json=body)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


async def test_unknown_hooks_are_422_each_and_change_nothing(
    client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    created = await client.post("/v1/agents", json={"id": "h", "pre_hooks": ["pii_redaction"]})
    assert created.status_code == 201, created.text
    before = await snapshot(db_engine)
    body = {"pre_hooks": ["pii_redaction", "nope"], "post_hooks": ["sign", "missing"]}
    for response in (
        await client.post("/v1/agents", json={"id": "bad", **body}),
        await client.patch("/v1/agents/h", json=body),
    ):
        assert response.status_code == 422, response.text
        errors = response.json()["errors"]
        assert [(e["loc"], e["type"]) for e in errors] == [
            (["pre_hooks", 1], "unknown_hook"),
            (["post_hooks", 1], "unknown_hook"),
        ]
    assert await snapshot(db_engine) == before


async def test_hooks_from_tool_modules_run_with_their_events(client: httpx.AsyncClient) -> None:
    agent = {"id": "h", "pre_hooks": ["pii_redaction", "no_swearing"], "post_hooks": ["sign"]}
    assert (await client.post("/v1/agents", json=agent)).status_code == 201

    run = await _run(client, "h", input="mail me at a@b.example", user_id="u1")
    assert run["status"] == "completed"
    assert run["content"] == "mail me at [EMAIL] (for u1)"
    events = await client.get(f"/v1/runs/{run['run_id']}/events")
    hooks = [
        (line.split(": ", 1)[1])
        for line in events.text.splitlines()
        if line.startswith("event: ") and "Hook" in line
    ]
    assert hooks == [
        "PreHookStarted",
        "PreHookCompleted",
        "PreHookStarted",
        "PreHookCompleted",
        "PostHookStarted",
        "PostHookCompleted",
    ]
    history = await client.get(f"/v1/sessions/{run['session_id']}/messages")
    assert history.json()["messages"] == [
        {"role": "user", "content": "mail me at [EMAIL]"},
        {"role": "assistant", "content": "mail me at [EMAIL] (for u1)"},
    ]

    rejected = await _run(client, "h", input="darn it")
    assert rejected["status"] == "error"
    assert rejected["error"] == {"code": "hook_rejected", "message": "Mind your language."}
