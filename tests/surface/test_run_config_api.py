"""run_config's guardrails and handoff_input_filter through the API."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import snapshot


async def test_run_guardrails_trip_and_unknown_ones_are_422(
    client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    assert (await client.post("/v1/agents", json={"id": "g"})).status_code == 201
    config = {"input_guardrails": [{"type": "blocklist", "words": ["secret"]}]}
    run = await client.post("/v1/agents/g/runs", json={"input": "a secret", "run_config": config})
    assert run.json()["status"] == "error"
    assert run.json()["error"]["code"] == "input_guardrail_tripwire_triggered"

    before = await snapshot(db_engine)
    bad = {"output_guardrails": [{"type": "python", "name": "missing"}]}
    refused = await client.post("/v1/agents/g/runs", json={"input": "x", "run_config": bad})
    assert refused.status_code == 422, refused.text
    assert "unknown guardrail 'missing'" in refused.json()["errors"][0]["msg"]
    wrong = await client.post(
        "/v1/agents/g/runs", json={"input": "x", "run_config": {"handoff_input_filter": "all"}}
    )
    assert wrong.status_code == 422
    assert await snapshot(db_engine) == before


async def test_remove_tools_at_a_handoff(client: httpx.AsyncClient) -> None:
    assert (
        await client.post("/v1/agents", json={"id": "b", "model": "test:echo"})
    ).status_code == 201
    root = {"id": "root", "model": "test:tools", "handoffs": ["b"]}
    assert (await client.post("/v1/agents", json=root)).status_code == 201
    body = {"input": "route me", "run_config": {"handoff_input_filter": "remove_tools"}}
    run = (await client.post("/v1/agents/root/runs", json=body)).json()
    assert run["status"] == "completed", run
    assert run["last_agent_id"] == "b"
    assert run["messages"] == [
        {"role": "user", "content": "route me"},
        {"role": "assistant", "content": "route me"},
    ]
