"""TENANT_MAX_ACTIVE_RUNS: a tenant's queued and running runs are counted in the
database, so the limit holds across replicas; one more is 429
`too_many_active_runs` with `Retry-After`, and other tenants are not held back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from tests.conftest import served
from tests.identity.conftest import bearer, hs256, keyed_settings
from tests.runs.conftest import wait_status

ACME = bearer(hs256({"tenant_id": "acme", "scope": "admin"}))
GLOBEX = bearer(hs256({"tenant_id": "globex", "scope": "admin"}))
SLOW_AGENT = {
    "id": "slow",
    "name": "Slow",
    "model": "test:echo",
    "model_settings": {"chunk_delay": 0.2},
}


@pytest.fixture
async def two_replicas(
    database_url: str, db_engine: AsyncEngine
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Two apps on one database, each limiting a tenant to two active runs
    (clients calling as acme unless told otherwise)."""
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            app: FastAPI = create_app(keyed_settings(database_url, tenant_max_active_runs=2))
            await stack.enter_async_context(served(app))
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        transport=transport, base_url="http://agentd.test", headers=ACME
                    )
                )
            )
        yield clients


async def start(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    body = {"input": "one two three four", "background": True}
    return await client.post("/v1/agents/slow/runs", json=body, headers=headers)


async def test_one_run_more_than_the_limit_is_429_on_any_replica(
    two_replicas: list[httpx.AsyncClient],
) -> None:
    first, second = two_replicas
    for headers in (ACME, GLOBEX):
        assert (await first.post("/v1/agents", json=SLOW_AGENT, headers=headers)).status_code == 201
    started = await asyncio.gather(start(first, ACME), start(second, ACME))
    assert [answer.status_code for answer in started] == [202, 202]
    for client in (first, second):
        over = await start(client, ACME)
        assert over.status_code == 429, over.text
        assert over.json()["code"] == "too_many_active_runs"
        assert int(over.headers["retry-after"]) >= 1
    assert (await start(second, GLOBEX)).status_code == 202  # another tenant's own count
    for answer in started:
        await wait_status(first, answer.json()["run_id"], {"completed"}, within=20)
    assert (await start(first, ACME)).status_code == 202


async def test_concurrent_creations_do_not_overshoot_the_limit(
    two_replicas: list[httpx.AsyncClient],
) -> None:
    first, second = two_replicas
    assert (await first.post("/v1/agents", json=SLOW_AGENT, headers=ACME)).status_code == 201
    answers = await asyncio.gather(*(start(c, ACME) for c in [first, second] * 4))
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [202, 202] + [429] * 6
