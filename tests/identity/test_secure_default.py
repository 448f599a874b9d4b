"""With nothing configured (no API_KEYS, no JWT_*, no stored key) only clients
on the server's host are served, as the operator, whatever they send; every
other client gets 401 unless AUTH_DISABLED. The first stored key ends that."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from tests.conftest import make_settings
from tests.identity.conftest import bearer


@asynccontextmanager
async def client_from(app: FastAPI, host: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://agentd.test") as client:
        yield client


async def test_only_loopback_clients_are_served_when_nothing_is_configured(
    app: FastAPI,
) -> None:
    for host in ("127.0.0.1", "::1"):
        async with client_from(app, host) as local:
            assert (await local.get("/v1/agents")).status_code == 200
            garbage = await local.get("/v1/agents", headers=bearer("whatever"))
            assert garbage.status_code == 200
    for host in ("203.0.113.7", "10.0.0.2", "192.168.1.10"):
        async with client_from(app, host) as remote:
            answer = await remote.get("/v1/agents")
            assert answer.status_code == 401
            assert "this host" in answer.json()["detail"]
            assert (await remote.get("/healthz")).status_code == 200


async def test_auth_disabled_serves_every_client(database_url: str, db_engine: AsyncEngine) -> None:
    app = create_app(make_settings(database_url, auth_disabled=True))
    async with app.router.lifespan_context(app), client_from(app, "203.0.113.7") as remote:
        created = await remote.post(
            "/v1/agents", json={"id": "echo", "name": "Echo", "model": "test:echo"}
        )
        assert created.status_code == 201
        keys = await remote.get("/v1/api-keys")
        assert keys.status_code == 200


async def test_the_first_stored_key_ends_the_loopback_default(app: FastAPI) -> None:
    async with client_from(app, "127.0.0.1") as local:
        created = await local.post(
            "/v1/api-keys", json={"name": "ci", "tenant_id": "default", "scopes": ["admin"]}
        )
        assert created.status_code == 201
        answer = await local.get("/v1/agents")
        assert answer.status_code == 401
        keyed = await local.get("/v1/agents", headers=bearer(created.json()["key"]))
        assert keyed.status_code == 200
