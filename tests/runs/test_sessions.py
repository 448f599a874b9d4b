"""Sessions: list, read, messages, state patch, delete."""

from __future__ import annotations

import httpx

from tests.runs.conftest import make_agent


async def test_session_routes(client: httpx.AsyncClient) -> None:
    await make_agent(client)
    for text in ("hi", "again"):
        await client.post(
            "/v1/agents/echo/runs", json={"input": text, "session_id": "s-1", "user_id": "u-1"}
        )
    await client.post(
        "/v1/agents/echo/runs", json={"input": "x", "session_id": "s-2", "user_id": "u-2"}
    )
    listed = (await client.get("/v1/sessions", params={"user_id": "u-1"})).json()
    assert [s["session_id"] for s in listed["data"]] == ["s-1"]
    assert listed["data"][0]["agent_id"] == "echo"
    everything = (await client.get("/v1/sessions", params={"agent_id": "echo", "limit": 1})).json()
    assert len(everything["data"]) == 1 and everything["next_cursor"]
    rest = (
        await client.get(
            "/v1/sessions", params={"agent_id": "echo", "cursor": everything["next_cursor"]}
        )
    ).json()
    assert {everything["data"][0]["session_id"], rest["data"][0]["session_id"]} == {"s-1", "s-2"}
    session = (await client.get("/v1/sessions/s-1")).json()
    assert len(session["run_ids"]) == 2
    assert session["active_run_id"] is None
    messages = (await client.get("/v1/sessions/s-1/messages")).json()["messages"]
    assert messages == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": "again"},
    ]


async def test_patch_state_merges(client: httpx.AsyncClient) -> None:
    await make_agent(client)
    await client.post(
        "/v1/agents/echo/runs",
        json={"input": "x", "session_id": "s", "session_state": {"a": 1, "b": {"c": 2}}},
    )
    patched = await client.patch(
        "/v1/sessions/s", json={"session_state": {"a": None, "b": {"d": 3}, "e": [1]}}
    )
    assert patched.status_code == 200
    assert patched.json()["session_state"] == {"b": {"c": 2, "d": 3}, "e": [1]}


async def test_delete_session_removes_runs(client: httpx.AsyncClient) -> None:
    await make_agent(client)
    run = (
        await client.post("/v1/agents/echo/runs", json={"input": "x", "session_id": "gone"})
    ).json()
    assert (await client.delete("/v1/sessions/gone")).status_code == 204
    assert (await client.get("/v1/sessions/gone")).status_code == 404
    assert (await client.get(f"/v1/runs/{run['run_id']}")).status_code == 404
    assert (await client.get("/v1/sessions/gone/messages")).json()["code"] == "session_not_found"
    assert (await client.delete("/v1/sessions/gone")).status_code == 404
