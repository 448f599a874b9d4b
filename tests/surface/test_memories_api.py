"""/v1/memories and memory-enabled agents through the API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import snapshot


async def _create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/memories", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def _event_names(text: str) -> list[str]:
    return [line[7:] for line in text.splitlines() if line.startswith("event: ")]


async def test_crud(client: httpx.AsyncClient) -> None:
    made = await _create(client, user_id="u1", memory="Likes tea", topics=["food"])
    assert set(made) == {
        "memory_id",
        "user_id",
        "agent_id",
        "memory",
        "topics",
        "created_at",
        "updated_at",
    }
    assert (made["user_id"], made["agent_id"], made["topics"]) == ("u1", None, ["food"])
    memory_id = made["memory_id"]
    assert (await client.get(f"/v1/memories/{memory_id}")).json() == made

    patched = await client.patch(
        f"/v1/memories/{memory_id}", json={"memory": "Likes green tea", "agent_id": "demo"}
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["memory"], body["agent_id"], body["topics"]) == (
        "Likes green tea",
        "demo",
        ["food"],
    )
    assert body["updated_at"] >= made["updated_at"]

    assert (await client.delete(f"/v1/memories/{memory_id}")).status_code == 204
    for response in (
        await client.get(f"/v1/memories/{memory_id}"),
        await client.patch(f"/v1/memories/{memory_id}", json={"memory": "x"}),
        await client.delete(f"/v1/memories/{memory_id}"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "memory_not_found"


async def test_list_filters_and_paginates(client: httpx.AsyncClient) -> None:
    ids = []
    for index in range(5):
        made = await _create(
            client,
            user_id="u1" if index < 4 else "u2",
            memory=f"m{index}",
            topics=["even"] if index % 2 == 0 else ["odd", "x"],
            agent_id="a" if index < 2 else None,
        )
        ids.append(made["memory_id"])

    async def listed(**query: Any) -> list[str]:
        response = await client.get("/v1/memories", params=query)
        assert response.status_code == 200, response.text
        return [m["memory"] for m in response.json()["data"]]

    assert await listed() == ["m4", "m3", "m2", "m1", "m0"]
    assert await listed(user_id="u1") == ["m3", "m2", "m1", "m0"]
    assert await listed(agent_id="a") == ["m1", "m0"]
    assert await listed(topic="odd") == ["m3", "m1"]
    assert await listed(topic="even", user_id="u2") == ["m4"]
    assert await listed(topic="nope") == []

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "user_id": "u1"}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/memories", params=params)).json()
        seen += [m["memory"] for m in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["m3", "m2", "m1", "m0"]


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("post", {"memory": "no user"}),
        ("post", {"user_id": "u", "memory": ""}),
        ("post", {"user_id": "u", "memory": "x", "topics": "food"}),
        ("post", {"user_id": "u", "memory": "x", "agent_id": "Not An Id"}),
        ("post", {"user_id": "u", "memory": "x", "extra": 1}),
        ("patch", {"memory": None}),
        ("patch", {"topics": [""]}),
        ("patch", {"user_id": "someone else"}),
    ],
)
async def test_bad_bodies_are_422_and_change_nothing(
    client: httpx.AsyncClient, db_engine: AsyncEngine, method: str, body: dict[str, Any]
) -> None:
    made = await _create(client, user_id="u", memory="kept")
    before = await snapshot(db_engine)
    url = "/v1/memories" if method == "post" else f"/v1/memories/{made['memory_id']}"
    response = await getattr(client, method)(url, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"]
    assert await snapshot(db_engine) == before


@pytest.mark.parametrize(
    "cursor",
    [
        "nope",
        "WyIyMDIwLTAxLTAxIiwieCJd",  # ["2020-01-01", "x"]: no offset
        "WyJzb29uIiwieCJd",  # ["soon", "x"]: no time
        "WzEsIngiXQ",  # [1, "x"]
    ],
)
async def test_bad_cursor_is_422(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get("/v1/memories", params={"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_a_memory_agent_remembers_the_user_across_sessions(
    client: httpx.AsyncClient,
) -> None:
    agent = {"id": "mem", "model": "test:echo", "memory": {"enabled": True}}
    assert (await client.post("/v1/agents", json=agent)).status_code == 201

    first = await client.post(
        "/v1/agents/mem/runs", json={"input": "My name is Ada", "user_id": "ada"}
    )
    assert first.json()["status"] == "completed", first.text
    events = await client.get(f"/v1/runs/{first.json()['run_id']}/events")
    assert _event_names(events.text) == [
        "RunStarted",
        "RunContent",
        "RunContentCompleted",
        "MemoryUpdateStarted",
        "MemoryUpdateCompleted",
        "RunCompleted",
    ]
    memories = (await client.get("/v1/memories", params={"user_id": "ada"})).json()["data"]
    assert [(m["memory"], m["agent_id"]) for m in memories] == [("My name is Ada", "mem")]

    again = await client.post(
        "/v1/agents/mem/runs",
        json={"input": "My name is Ada", "user_id": "ada", "session_id": "other"},
    )
    assert again.json()["status"] == "completed"
    assert len((await client.get("/v1/memories")).json()["data"]) == 1

    anonymous = await client.post(
        "/v1/agents/mem/runs", json={"input": "hi", "stream": True, "stream_events": True}
    )
    frames = [line for line in anonymous.text.splitlines() if line.startswith("data: ")]
    assert '"reason":"no_user_id"' in next(f for f in frames if "MemoryUpdateCompleted" in f)
    assert len((await client.get("/v1/memories")).json()["data"]) == 1


async def test_memory_model_must_exist(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/agents", json={"id": "m", "memory": {"enabled": True, "model": "nope:x"}}
    )
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["memory", "model"]]
