"""An app with every kind of credential configured, and principals of two
tenants (one of them with two users) to call it as."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.main import create_app
from app.principal import SCOPES
from tests.conftest import make_settings, served

OPERATOR_KEY = "operator-key-for-tests"
JWT_SECRET = "a-secret-of-at-least-32-bytes-for-hs256"
DATA_SCOPES = sorted(SCOPES - {"admin"})


def hs256(claims: dict[str, Any], secret: str = JWT_SECRET) -> str:
    """A token signed with the test secret, valid for an hour unless `claims` say otherwise."""
    return jwt.encode({"exp": int(time.time()) + 3600, **claims}, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def keyed_settings(database_url: str, **overrides: Any) -> Settings:
    return make_settings(database_url, api_keys=OPERATOR_KEY, jwt_secret=JWT_SECRET, **overrides)


@pytest.fixture
async def keyed_app(database_url: str, db_engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    async with served(create_app(keyed_settings(database_url))) as application:
        yield application


@pytest.fixture
async def http(keyed_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client on another host: nothing is granted for being local."""
    transport = httpx.ASGITransport(app=keyed_app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://agentd.test") as client:
        yield client


async def store_key(
    http: httpx.AsyncClient, tenant_id: str, scopes: list[str], user_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"{tenant_id}-{user_id}", "tenant_id": tenant_id}
    body.update(scopes=scopes, user_id=user_id)
    created = await http.post("/v1/api-keys", json=body, headers=bearer(OPERATOR_KEY))
    assert created.status_code == 201, created.text
    answer: dict[str, Any] = created.json()
    return answer


@dataclass
class Caller:
    """A principal as the tests call with it, and what it created."""

    name: str
    tenant: str
    user: str | None
    headers: dict[str, str]
    objects: dict[str, str] = field(default_factory=dict)  # kind -> id


async def four_callers(http: httpx.AsyncClient) -> list[Caller]:
    """acme's admin (a stored key), acme's users u1 (a JWT) and u2 (a stored key
    bound to u2), and globex's admin (a JWT without a user)."""
    acme = await store_key(http, "acme", ["admin"])
    u2 = await store_key(http, "acme", DATA_SCOPES, "u2")
    return [
        Caller("acme", "acme", None, bearer(acme["key"])),
        Caller("u1", "acme", "u1", bearer(hs256({"sub": "u1", "tenant_id": "acme",
                                                  "scope": " ".join(DATA_SCOPES)}))),
        Caller("u2", "acme", "u2", bearer(u2["key"])),
        Caller("globex", "globex", None, bearer(hs256({"tenant_id": "globex",
                                                       "scope": "admin"}))),
    ]  # fmt: skip
