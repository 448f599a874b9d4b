"""What a run remembers and summarizes stays in its tenant: two tenants with the
same user id and the same session id each see only their own memories and
their own session's summary, and a user-bound credential stores only its own
user's memories."""

from __future__ import annotations

import httpx

from tests.identity.conftest import DATA_SCOPES, bearer, hs256, store_key

AGENT = {
    "id": "keeper",
    "model": "test:echo",
    "memory": {"enabled": True},
    "session_summary": {"enabled": True},
}


def admin_of(tenant: str) -> dict[str, str]:
    return bearer(hs256({"tenant_id": tenant, "scope": "admin"}))


async def test_memories_and_summaries_stay_in_the_runs_tenant(http: httpx.AsyncClient) -> None:
    for tenant in ("acme", "globex"):
        created = await http.post("/v1/agents", json=AGENT, headers=admin_of(tenant))
        assert created.status_code == 201, created.text
    body = {"input": "My name is Ada", "user_id": "ada", "session_id": "shared"}
    run = await http.post("/v1/agents/keeper/runs", json=body, headers=admin_of("acme"))
    assert run.json()["status"] == "completed", run.text
    other = {"input": "hi", "user_id": "ada", "session_id": "shared"}
    run = await http.post("/v1/agents/keeper/runs", json=other, headers=admin_of("globex"))
    assert run.json()["status"] == "completed", run.text
    body["input"] = "again"
    run = await http.post("/v1/agents/keeper/runs", json=body, headers=admin_of("acme"))
    assert run.json()["status"] == "completed", run.text

    seen = {
        tenant: (await http.get("/v1/memories", headers=admin_of(tenant))).json()["data"]
        for tenant in ("acme", "globex")
    }
    assert {
        tenant: [(m["user_id"], m["memory"]) for m in memories] for tenant, memories in seen.items()
    } == {"acme": [("ada", "again"), ("ada", "My name is Ada")], "globex": [("ada", "hi")]}
    memory_id = seen["acme"][0]["memory_id"]
    for method in ("GET", "PATCH", "DELETE"):
        sent = {"memory": "x"} if method == "PATCH" else None
        theirs = await http.request(
            method, f"/v1/memories/{memory_id}", json=sent, headers=admin_of("globex")
        )
        assert theirs.status_code == 404, theirs.text

    summaries = {
        tenant: (await http.get("/v1/sessions/shared", headers=admin_of(tenant))).json()["summary"][
            "summary"
        ]
        for tenant in ("acme", "globex")
    }
    assert summaries == {"acme": "My name is Ada\nagain", "globex": "hi"}


async def test_a_user_bound_credential_keeps_to_its_user(http: httpx.AsyncClient) -> None:
    u2 = bearer((await store_key(http, "acme", DATA_SCOPES, "u2"))["key"])
    mine = await http.post("/v1/memories", json={"user_id": "u2", "memory": "m"}, headers=u2)
    assert mine.status_code == 201, mine.text
    other = await http.post("/v1/memories", json={"user_id": "u1", "memory": "m"}, headers=u2)
    assert other.status_code == 403, other.text
    admin = await http.post(
        "/v1/memories", json={"user_id": "u1", "memory": "theirs"}, headers=admin_of("acme")
    )
    assert admin.status_code == 201, admin.text
    seen = (await http.get("/v1/memories", headers=u2)).json()["data"]
    assert [m["user_id"] for m in seen] == ["u2"]
    theirs = await http.get(f"/v1/memories/{admin.json()['memory_id']}", headers=u2)
    assert theirs.status_code == 404
