"""Liveness, readiness, the demo agent and start-up behaviour."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app import migrate
from app.db import create_engine
from app.main import create_app
from tests.conftest import create_postgres_database, drop_postgres_database, make_settings


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["revision"] == migrate.head_revision()


async def test_demo_agent_is_seeded_once(database_url: str, db_engine: AsyncEngine) -> None:
    settings = make_settings(database_url, seed_demo_agent=True)
    for _ in range(2):
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                demo = (await client.get("/v1/agents/demo")).json()
                assert demo["model"] == "test:echo"
                assert demo["version"] == 1


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: object) -> object:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/empty.db"
    else:
        url = await create_postgres_database("agentd_empty")
        yield url
        await drop_postgres_database(url)


async def test_not_ready_until_migrated(empty_database_url: str) -> None:
    app = create_app(make_settings(empty_database_url, auto_migrate=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "not_ready"
            engine = create_engine(empty_database_url)
            await migrate.upgrade(engine)
            await engine.dispose()
            assert (await client.get("/readyz")).status_code == 200


async def test_not_ready_when_database_unreachable() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/none"
    app = create_app(make_settings(url, auto_migrate=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["code"] == "not_ready"
            assert (await client.get("/healthz")).status_code == 200


async def test_unreachable_database_is_503_not_500() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:1/none"
    app = create_app(make_settings(url, auto_migrate=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/v1/agents")
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == "database_unavailable"
            assert response.headers["retry-after"] == "1"


async def test_exhausted_pool_is_503_overloaded(app: object) -> None:
    import sqlalchemy.exc
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)

    async def busy() -> None:
        raise sqlalchemy.exc.TimeoutError("QueuePool limit of size 20 overflow 20 reached")

    app.add_api_route("/v1/busy", busy)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/v1/busy")
    assert response.status_code == 503
    assert response.json()["code"] == "overloaded"
    assert "QueuePool" not in response.text
