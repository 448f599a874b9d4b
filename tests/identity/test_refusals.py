"""Refusals over every route of the OpenAPI schema, read at test time (a route
added later is covered without editing this file): no credentials, an expired
token, a token signed with another secret, a token naming no tenant and a
revoked stored key are each 401 with `WWW-Authenticate: Bearer`, before any
route is chosen. And a key revoked on one replica is refused by another within
a second, on either database (PostgreSQL tells the other replica; SQLite's
replicas hear nothing, and the one-second cache bounds it)."""

from __future__ import annotations

import asyncio
import re
import time
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from tests.conftest import served
from tests.identity.conftest import OPERATOR_KEY, bearer, hs256, keyed_settings, store_key

ACME = {"tenant_id": "acme", "scope": "admin"}


def schema_requests(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every operation under /v1, path parameters filled in."""
    requests = [
        (method.upper(), re.sub(r"\{[^}]+\}", "x1", path))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/v1")
        for method in operations
    ]
    assert len(requests) >= 29  # as many as the schema had when this was written
    return requests + [("POST", "/mcp"), ("GET", "/v1/no-such-route"), ("PUT", "/v1")]


def refused(response: httpx.Response, where: str) -> str | None:
    if response.status_code != 401:
        return f"{where}: {response.status_code} {response.text[:200]}"
    if not response.headers.get("www-authenticate", "").startswith("Bearer"):
        return f"{where}: 401 without WWW-Authenticate"
    return None


async def test_every_route_refuses_bad_credentials_before_routing(
    keyed_app: FastAPI, http: httpx.AsyncClient
) -> None:
    revoked = await store_key(http, "acme", ["admin"])
    gone = await http.delete(f"/v1/api-keys/{revoked['id']}", headers=bearer(OPERATOR_KEY))
    assert gone.status_code == 204
    credentials: dict[str, dict[str, str]] = {
        "none": {},
        "basic": {"Authorization": "Basic b3BlcmF0b3I6a2V5"},
        "expired": bearer(hs256({**ACME, "exp": int(time.time()) - 60})),
        "another secret": bearer(hs256(ACME, "another-secret-of-32-bytes-or-more!!")),
        "no tenant": bearer(hs256({"scope": "admin"})),
        "revoked key": bearer(revoked["key"]),
        "unknown key": bearer("agk_" + "x" * 43),
    }
    problems = []
    for method, path in schema_requests(keyed_app):
        for name, headers in credentials.items():
            answer = await http.request(method, path, headers=headers, json={})
            problem = refused(answer, f"{method} {path} with {name}")
            if problem is not None:
                problems.append(problem)
    assert problems == []


@pytest.mark.parametrize("wait", [False, True])
async def test_a_key_revoked_on_one_replica_is_refused_by_another_within_a_second(
    database_url: str, db_engine: AsyncEngine, wait: bool
) -> None:
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            app = await stack.enter_async_context(served(create_app(keyed_settings(database_url))))
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
            client = httpx.AsyncClient(transport=transport, base_url="http://agentd.test")
            clients.append(await stack.enter_async_context(client))
        one, two = clients
        created = await store_key(one, "acme", ["agents:read"])
        key = bearer(created["key"])
        assert (await two.get("/v1/agents", headers=key)).status_code == 200  # cached there
        if wait:  # the cached entry half-way to its end
            await asyncio.sleep(0.5)
        deleted = await one.delete(f"/v1/api-keys/{created['id']}", headers=bearer(OPERATOR_KEY))
        assert deleted.status_code == 204
        revoked_at = time.monotonic()
        assert (await one.get("/v1/agents", headers=key)).status_code == 401
        while (await two.get("/v1/agents", headers=key)).status_code == 200:
            assert time.monotonic() - revoked_at < 1.0, "still accepted after a second"
            await asyncio.sleep(0.02)
        assert refused(await two.get("/v1/agents", headers=key), "replica two") is None
