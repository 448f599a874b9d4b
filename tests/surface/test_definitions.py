"""The new definition fields: defaults, round trip, and 422 for refs that do not resolve."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import snapshot


async def test_defaults_and_round_trip(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/agents", json={"id": "d"})).json()
    assert created["memory"] == {
        "enabled": False,
        "agentic": False,
        "model": None,
        "add_to_context": True,
    }
    assert created["session_summary"] == {"enabled": False, "model": None, "add_to_context": True}
    assert (created["pre_hooks"], created["post_hooks"]) == ([], [])
    assert (created["parser_model"], created["output_model"]) == (None, None)
    changes = {
        "memory": {"agentic": True, "model": {"provider": "test", "name": "echo"}},
        "parser_model": "test:echo",
        "parser_model_prompt": "Parse it.",
        "output_model": "test:tools",
        "output_model_prompt": "Write it.",
    }
    patched = (await client.patch("/v1/agents/d", json=changes)).json()
    assert patched["version"] == 2
    assert patched["memory"]["model"] == {"provider": "test", "name": "echo", "settings": {}}
    assert (patched["parser_model"], patched["output_model_prompt"]) == ("test:echo", "Write it.")


async def test_model_refs_that_do_not_resolve_are_422_each(
    client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    before = await snapshot(db_engine)
    body = {
        "memory": {"enabled": True, "model": "nope:m"},
        "session_summary": {"enabled": True, "model": "test:nope"},
        "parser_model": "parser-without-provider",
        "output_model": {"provider": "nope", "name": "x"},
    }
    response = await client.post("/v1/agents", json=body)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == [
        ["memory", "model"],
        ["parser_model"],
        ["output_model"],
        ["session_summary", "model"],
    ]
    assert await snapshot(db_engine) == before
