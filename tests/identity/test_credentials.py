"""Credentials: what each kind proves, and what is refused (401 with
`WWW-Authenticate: Bearer`); scopes (403 `forbidden`); stored keys shown once
and revoked at once; a user-bound principal's runs are its user's."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.tables import ApiKey
from tests.identity.conftest import (
    DATA_SCOPES,
    JWT_SECRET,
    OPERATOR_KEY,
    bearer,
    hs256,
    store_key,
)

ACME_ALL = {"tenant_id": "acme", "scope": " ".join(DATA_SCOPES)}


def refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/agents"),
        ("POST", "/v1/agents/demo/runs"),
        ("GET", "/v1/no-such-route"),
        ("DELETE", "/v1/runs/x/nothing/here"),
        ("POST", "/mcp"),
        ("GET", "/v1"),
    ],
)
async def test_without_credentials_every_guarded_path_is_401(
    http: httpx.AsyncClient, method: str, path: str
) -> None:
    refused(await http.request(method, path))
    refused(await http.request(method, path, headers={"Authorization": "Basic b3A6b3A="}))


async def test_health_and_schema_stay_open(http: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/metrics"):
        assert (await http.get(path)).status_code == 200, path


async def test_an_unknown_route_is_404_once_authenticated(http: httpx.AsyncClient) -> None:
    answer = await http.get("/v1/no-such-route", headers=bearer(OPERATOR_KEY))
    assert answer.status_code == 404


@pytest.mark.parametrize(
    ("claims", "secret", "why"),
    [
        ({**ACME_ALL, "exp": int(time.time()) - 60}, JWT_SECRET, "expired"),
        (ACME_ALL, "another-secret-of-32-bytes-or-more!!", "not valid"),
        ({"scope": "runs:read"}, JWT_SECRET, "tenant"),
        ({**ACME_ALL, "sub": 12}, JWT_SECRET, "not valid"),
    ],
)
async def test_bad_tokens_are_refused(
    http: httpx.AsyncClient, claims: dict[str, object], secret: str, why: str
) -> None:
    answer = await http.get("/v1/runs", headers=bearer(hs256(claims, secret)))
    refused(answer)
    assert why in answer.json()["detail"]


async def test_tokens_without_exp_or_tampered_or_unsigned_are_refused(
    http: httpx.AsyncClient,
) -> None:
    import jwt

    no_exp = jwt.encode(ACME_ALL, JWT_SECRET, algorithm="HS256")
    refused(await http.get("/v1/runs", headers=bearer(no_exp)))
    head, payload, signature = hs256(ACME_ALL).split(".")
    other = hs256({**ACME_ALL, "tenant_id": "globex"}).split(".")[1]
    refused(await http.get("/v1/runs", headers=bearer(f"{head}.{other}.{signature}")))
    unsigned = jwt.encode({**ACME_ALL, "exp": int(time.time()) + 60}, None, algorithm="none")
    refused(await http.get("/v1/runs", headers=bearer(unsigned)))
    refused(await http.get("/v1/runs", headers=bearer("agk_not-a-stored-key")))
    refused(await http.get("/v1/runs", headers=bearer("just-wrong")))


async def test_a_token_just_past_exp_is_within_the_leeway(http: httpx.AsyncClient) -> None:
    token = hs256({**ACME_ALL, "exp": int(time.time()) - 2})
    assert (await http.get("/v1/runs", headers=bearer(token))).status_code == 200


async def test_audience_and_issuer_when_set_are_required(
    database_url: str, db_engine: AsyncEngine
) -> None:
    from app.main import create_app
    from tests.identity.conftest import keyed_settings

    app = create_app(keyed_settings(database_url, jwt_audience="agentd", jwt_issuer="idp"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            good = {**ACME_ALL, "aud": "agentd", "iss": "idp"}
            assert (await client.get("/v1/runs", headers=bearer(hs256(good)))).status_code == 200
            for claims in (
                {**ACME_ALL, "iss": "idp"},
                {**ACME_ALL, "aud": "agentd"},
                {**good, "aud": "someone-else"},
                {**good, "iss": "another-idp"},
            ):
                refused(await client.get("/v1/runs", headers=bearer(hs256(claims))))


async def test_scopes_are_checked_per_route(http: httpx.AsyncClient) -> None:
    reader = bearer(hs256({"tenant_id": "acme", "scope": "runs:read agents:read"}))
    assert (await http.get("/v1/runs", headers=reader)).status_code == 200
    assert (await http.get("/v1/agents", headers=reader)).status_code == 200
    for method, path, body in [
        ("POST", "/v1/agents", {"name": "x", "model": "test:echo"}),
        ("POST", "/v1/agents/demo/runs", {"input": "hi"}),
        ("GET", "/v1/sessions", None),
        ("GET", "/v1/api-keys", None),
        ("POST", "/v1/api-keys", {"name": "k", "tenant_id": "acme", "scopes": []}),
    ]:
        answer = await http.request(method, path, json=body, headers=reader)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["code"] == "forbidden"


async def test_a_stored_key_is_shown_once_and_only_its_hash_is_kept(
    http: httpx.AsyncClient, keyed_app: FastAPI
) -> None:
    created = await store_key(http, "acme", ["agents:read"], "u7")
    key = created["key"]
    assert key.startswith("agk_") and len(key) > 40
    assert {k: created[k] for k in ("name", "tenant_id", "user_id", "scopes")} == {
        "name": "acme-u7",
        "tenant_id": "acme",
        "user_id": "u7",
        "scopes": ["agents:read"],
    }
    listed = (await http.get("/v1/api-keys", headers=bearer(OPERATOR_KEY))).json()["data"]
    assert [item["id"] for item in listed] == [created["id"]]
    assert "key" not in listed[0]
    async with keyed_app.state.sessionmaker() as session:
        stored = (await session.scalars(select(ApiKey))).all()
    assert [row.key_hash for row in stored] == [hashlib.sha256(key.encode()).hexdigest()]
    assert key not in repr([row.__dict__ for row in stored])
    assert (await http.get("/v1/agents", headers=bearer(key))).status_code == 200


async def test_stored_keys_page_oldest_first(http: httpx.AsyncClient) -> None:
    ids = [(await store_key(http, "acme", ["agents:read"], f"u{n}"))["id"] for n in range(3)]
    seen: list[str] = []
    cursors: list[str | None] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = (await http.get("/v1/api-keys", params=params, headers=bearer(OPERATOR_KEY))).json()
        seen += [item["id"] for item in page["data"]]
        cursors.append(page["next_cursor"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ids
    assert len(cursors) == 2 and cursors[-1] is None
    bad = await http.get("/v1/api-keys?cursor=WzFd", headers=bearer(OPERATOR_KEY))  # [1]
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"


async def test_a_deleted_key_is_refused_at_once(http: httpx.AsyncClient) -> None:
    created = await store_key(http, "acme", ["agents:read"])
    key = bearer(created["key"])
    assert (await http.get("/v1/agents", headers=key)).status_code == 200
    deleted = await http.delete(f"/v1/api-keys/{created['id']}", headers=bearer(OPERATOR_KEY))
    assert deleted.status_code == 204
    refused(await http.get("/v1/agents", headers=key))
    again = await http.delete(f"/v1/api-keys/{created['id']}", headers=bearer(OPERATOR_KEY))
    assert again.status_code == 404
    assert again.json()["code"] == "api_key_not_found"


async def test_a_tenant_admin_manages_its_own_tenant_only(http: httpx.AsyncClient) -> None:
    admin = bearer((await store_key(http, "acme", ["admin"]))["key"])
    others = await store_key(http, "globex", ["runs:read"])
    mine = await http.post(
        "/v1/api-keys",
        json={"name": "ci", "tenant_id": "acme", "scopes": ["runs:read"]},
        headers=admin,
    )
    assert mine.status_code == 201
    theirs = await http.post(
        "/v1/api-keys",
        json={"name": "ci", "tenant_id": "globex", "scopes": ["admin"]},
        headers=admin,
    )
    assert theirs.status_code == 403
    listed = (await http.get("/v1/api-keys", headers=admin)).json()["data"]
    assert {item["tenant_id"] for item in listed} == {"acme"}
    gone = await http.delete(f"/v1/api-keys/{others['id']}", headers=admin)
    assert gone.status_code == 404
    bad = await http.post(
        "/v1/api-keys",
        json={"name": "ci", "tenant_id": "acme", "scopes": ["root"]},
        headers=admin,
    )
    assert bad.status_code == 422


async def test_a_user_bound_principal_runs_as_its_user(http: httpx.AsyncClient) -> None:
    operator = bearer(OPERATOR_KEY)
    agent = {"id": "echo", "name": "Echo", "model": "test:echo"}
    acme = bearer(hs256({"tenant_id": "acme", "scope": "admin"}))
    assert (await http.post("/v1/agents", json=agent, headers=acme)).status_code == 201
    u1 = bearer(hs256({**ACME_ALL, "sub": "u1"}))
    run = await http.post("/v1/agents/echo/runs", json={"input": "hi"}, headers=u1)
    assert run.status_code == 200
    assert run.json()["user_id"] == "u1"
    same = await http.post(
        "/v1/agents/echo/runs", json={"input": "hi", "user_id": "u1"}, headers=u1
    )
    assert same.status_code == 200
    other = await http.post(
        "/v1/agents/echo/runs", json={"input": "hi", "user_id": "u2"}, headers=u1
    )
    assert other.status_code == 403
    assert other.json()["code"] == "forbidden"
    # The operator's tenant is `default`: acme's agent is not its.
    missing = await http.post("/v1/agents/echo/runs", json={"input": "hi"}, headers=operator)
    assert missing.status_code == 404


async def test_agent_and_session_ids_are_per_tenant(http: httpx.AsyncClient) -> None:
    tenants = {
        name: bearer(hs256({"tenant_id": name, "scope": "admin"})) for name in ("acme", "globex")
    }
    for name, headers in tenants.items():
        agent = {"id": "support", "name": name, "model": "test:echo", "instructions": name}
        assert (await http.post("/v1/agents", json=agent, headers=headers)).status_code == 201
    for name, headers in tenants.items():
        run = await http.post(
            "/v1/agents/support/runs",
            json={"input": f"to {name}", "session_id": "main"},
            headers=headers,
        )
        assert run.status_code == 200, run.text
        assert run.json()["agent_name"] == name
    for name, headers in tenants.items():
        session = (await http.get("/v1/sessions/main", headers=headers)).json()
        assert len(session["run_ids"]) == 1
        history = (await http.get("/v1/sessions/main/messages", headers=headers)).json()
        assert history["messages"][0]["content"] == f"to {name}"
