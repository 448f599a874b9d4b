"""The agent definitions API: create, read, list, edit, delete, and every rejection."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import snapshot

SUPPORT: dict[str, Any] = {
    "id": "support",
    "name": "Support",
    "instructions": "You are terse.",
    "model": "test:echo",
    "model_settings": {"temperature": 0.2, "max_tokens": 512},
    "tools": [
        "current_time",
        {"name": "calculator", "requires_confirmation": True},
        {
            "type": "client",
            "name": "get_location",
            "description": "Where the user is.",
            "parameters": {"type": "object", "properties": {}},
        },
    ],
    "max_turns": 5,
    "metadata": {"team": "a"},
}


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/agents", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_create_and_get(client: httpx.AsyncClient) -> None:
    created = await create(client, SUPPORT)
    assert created["id"] == "support"
    assert created["version"] == 1
    assert created["tools"][1] == {
        "type": "function",
        "name": "calculator",
        "requires_confirmation": True,
        "requires_user_input": False,
        "user_input_fields": None,
    }
    assert created["created_at"].endswith("Z")
    fetched = (await client.get("/v1/agents/support")).json()
    assert fetched == created


async def test_generated_id(client: httpx.AsyncClient) -> None:
    created = await create(client, {"name": "anonymous", "model": "test:echo"})
    assert len(created["id"]) == 36
    assert (await client.get(f"/v1/agents/{created['id']}")).status_code == 200


async def test_patch_makes_versions(client: httpx.AsyncClient) -> None:
    await create(client, SUPPORT)
    first = await client.patch(
        "/v1/agents/support", json={"instructions": ["Be kind.", "Be brief."]}
    )
    assert first.status_code == 200
    assert first.json()["version"] == 2
    assert first.json()["instructions"] == ["Be kind.", "Be brief."]
    assert first.json()["max_turns"] == 5  # untouched fields stay
    second = await client.patch("/v1/agents/support", json={"output_schema": {"type": "object"}})
    assert second.json()["version"] == 3
    assert second.json()["instructions"] == ["Be kind.", "Be brief."]
    unchanged = await client.patch("/v1/agents/support", json={})
    assert unchanged.json()["version"] == 3


async def test_versions_are_listed_newest_first_and_readable(client: httpx.AsyncClient) -> None:
    await create(client, SUPPORT)
    await client.patch("/v1/agents/support", json={"name": "Support 2"})
    await client.patch("/v1/agents/support", json={"name": "Support 3"})
    first = await client.get("/v1/agents/support/versions?limit=2")
    assert first.status_code == 200
    page = first.json()
    assert [(v["version"], v["name"]) for v in page["data"]] == [(3, "Support 3"), (2, "Support 2")]
    rest = await client.get(f"/v1/agents/support/versions?cursor={page['next_cursor']}")
    assert [(v["version"], v["name"]) for v in rest.json()["data"]] == [(1, "Support")]
    assert rest.json()["next_cursor"] is None
    one = await client.get("/v1/agents/support/versions/1")
    assert one.json()["tools"] == (await client.get("/v1/agents/support")).json()["tools"]
    assert one.json()["created_at"]
    missing = await client.get("/v1/agents/support/versions/9")
    assert (missing.status_code, missing.json()["code"]) == (404, "agent_not_found")
    absent = await client.get("/v1/agents/nobody/versions")
    assert (absent.status_code, absent.json()["code"]) == (404, "agent_not_found")


async def test_delete_then_404(client: httpx.AsyncClient) -> None:
    await create(client, SUPPORT)
    response = await client.delete("/v1/agents/support")
    assert response.status_code == 204
    assert response.content == b""
    missing = await client.get("/v1/agents/support")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "agent_not_found"
    assert (await client.delete("/v1/agents/support")).status_code == 404
    assert (await client.patch("/v1/agents/support", json={"name": "x"})).status_code == 404


async def test_list_paginates(client: httpx.AsyncClient) -> None:
    for index in range(5):
        await create(client, {"id": f"agent-{index}", "model": "test:echo"})
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/agents", params=params)).json()
        seen += [agent["id"] for agent in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"agent-{index}" for index in range(5)]
    assert pages == 3


async def test_handoffs_and_agent_guardrails_must_exist(client: httpx.AsyncClient) -> None:
    await create(client, {"id": "billing", "model": "test:echo"})
    ok = await client.post(
        "/v1/agents",
        json={
            "id": "front",
            "handoffs": ["billing"],
            "input_guardrails": [{"type": "agent", "agent_id": "billing"}],
        },
    )
    assert ok.status_code == 201


BAD_DEFINITIONS: list[tuple[str, dict[str, Any], str]] = [
    ("bad id", {"id": "Not A Slug"}, "id"),
    ("unknown provider", {"model": "nope:gpt"}, "model"),
    ("model without provider", {"model": "gpt-4o"}, "model"),
    ("unknown test model", {"model": "test:nothing"}, "model"),
    ("unknown tool", {"tools": ["no_such_tool"]}, "tools"),
    ("unknown handoff", {"handoffs": ["ghost"]}, "handoffs"),
    ("self handoff", {"id": "selfish", "handoffs": ["selfish"]}, "handoffs"),
    ("invalid output schema", {"output_schema": {"type": "not-a-type"}}, "output_schema"),
    ("invalid input schema", {"input_schema": {"properties": 5}}, "input_schema"),
    (
        "invalid client tool schema",
        {"tools": [{"type": "client", "name": "x", "parameters": {"type": 3}}]},
        "tools",
    ),
    ("max_turns zero", {"max_turns": 0}, "max_turns"),
    ("wrong type", {"max_turns": "many"}, "max_turns"),
    ("unknown field", {"temperature": 1}, "temperature"),
    (
        "bad regex guardrail",
        {"input_guardrails": [{"type": "regex", "pattern": "("}]},
        "input_guardrails",
    ),
    ("unknown guardrail kind", {"input_guardrails": [{"type": "magic"}]}, "input_guardrails"),
    (
        "unknown python guardrail",
        {"output_guardrails": [{"type": "python", "name": "nope"}]},
        "output_guardrails",
    ),
    (
        "unknown guardrail agent",
        {"output_guardrails": [{"type": "agent", "agent_id": "ghost"}]},
        "output_guardrails",
    ),
    ("duplicate tool", {"tools": ["current_time", "current_time"]}, "tools"),
    (
        "input schema $ref to nowhere",
        {"input_schema": {"type": "object", "properties": {"a": {"$ref": "#/defs/x"}}}},
        "input_schema",
    ),
    (
        "output schema $ref to nowhere",
        {"output_schema": {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}}},
        "output_schema",
    ),
    (
        "remote $ref",
        {"output_schema": {"$ref": "http://example.invalid/schema.json"}},
        "output_schema",
    ),
    (
        "client tool $ref to nowhere",
        {"tools": [{"type": "client", "name": "x", "parameters": {"$ref": "#/nope"}}]},
        "tools",
    ),
]


async def test_schemas_whose_refs_resolve_are_accepted(client: httpx.AsyncClient) -> None:
    """Refs to $defs, draft-07 definitions and a nested $id resolve; "$ref" as a
    property name or inside data (examples) is not a reference."""
    schemas = [
        {
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/A"}, "$ref": {"type": "string"}},
            "$defs": {"A": {"type": "integer", "examples": [{"$ref": "#/not/a/ref"}]}},
        },
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"b": {"$ref": "#/definitions/B"}},
            "definitions": {"B": {"type": "string"}},
        },
        {
            "$id": "https://example.com/root.json",
            "type": "object",
            "properties": {"c": {"$ref": "item.json"}},
            "$defs": {"item": {"$id": "item.json", "type": "string"}},
        },
    ]
    for index, schema in enumerate(schemas):
        response = await client.post(
            "/v1/agents",
            json={"id": f"refs-{index}", "model": "test:echo", "output_schema": schema},
        )
        assert response.status_code == 201, (index, response.text)
    run = await client.post("/v1/agents/refs-0/runs", json={"input": "go"})
    assert run.json()["status"] == "completed", run.text


@pytest.mark.parametrize(
    ("case", "body", "field"), BAD_DEFINITIONS, ids=[c[0] for c in BAD_DEFINITIONS]
)
async def test_invalid_definitions_are_422_and_change_nothing(
    client: httpx.AsyncClient, db_engine: AsyncEngine, case: str, body: dict[str, Any], field: str
) -> None:
    await create(client, {"id": "existing", "model": "test:echo"})
    before = await snapshot(db_engine)
    response = await client.post("/v1/agents", json={"model": "test:echo", **body})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert problem["status"] == 422
    assert any(error["loc"][0] == field for error in problem["errors"]), problem
    patched = await client.patch(
        "/v1/agents/existing", json={k: v for k, v in body.items() if k != "id"}
    )
    if "id" not in body:
        assert patched.status_code == 422, patched.text
    assert await snapshot(db_engine) == before


async def test_duplicate_id_is_409(client: httpx.AsyncClient, db_engine: AsyncEngine) -> None:
    await create(client, SUPPORT)
    before = await snapshot(db_engine)
    response = await client.post("/v1/agents", json={**SUPPORT, "name": "Other"})
    assert response.status_code == 409
    assert response.json()["code"] == "agent_exists"
    assert await snapshot(db_engine) == before


async def test_patch_cannot_change_id(client: httpx.AsyncClient) -> None:
    await create(client, SUPPORT)
    response = await client.patch("/v1/agents/support", json={"id": "other"})
    assert response.status_code == 422
