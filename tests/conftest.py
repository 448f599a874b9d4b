"""Shared fixtures: a real database per backend (SQLite and PostgreSQL, the same
tests on both), the app on it, and an HTTP client.

Each backend's database is created fresh once per test session and migrated to
head; after every test all rows are deleted, so tests are isolated.
Set AGENTD_TEST_BACKENDS=sqlite (or postgres) to run one backend only.
`fake` is a fake OpenAI-compatible server and `over_http` the app on a real
uvicorn with its `openai:` models at that server; a test folder or module adds
the settings it needs by overriding `over_http_settings`.
PostgreSQL comes from AGENTD_TEST_POSTGRES (a server URL); if it is not
reachable the PostgreSQL tests fail, they never skip.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import migrate, principal
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from app.tables import Base
from tests.fakes.openai_server import FakeOpenAIServer
from tests.runs.conftest import LiveServer, serving

POSTGRES_SERVER = os.environ.get(
    "AGENTD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = [
    name.strip()
    for name in os.environ.get("AGENTD_TEST_BACKENDS", "sqlite,postgres").split(",")
    if name.strip()
]


async def create_postgres_database(prefix: str = "agentd_test") -> str:
    """A new empty PostgreSQL database; returns its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        connection = await asyncpg.connect(POSTGRES_SERVER, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_SERVER} is not reachable: {exc}", pytrace=False)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    server = POSTGRES_SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{server}/{name}"


async def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    connection = await asyncpg.connect(POSTGRES_SERVER, timeout=10)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(scope="session", params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A migrated database for the whole test session, one per backend."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "agentd.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = await create_postgres_database()
    engine = create_engine(url)
    await migrate.upgrade(engine)
    await engine.dispose()
    yield url
    if request.param == "postgres":
        await drop_postgres_database(url)


@pytest.fixture
async def db_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(delete(table))
    await engine.dispose()


@pytest.fixture
def as_operator() -> Iterator[None]:
    """Domain code called from a test (not through a request) acts as the operator."""
    with principal.acting_as(principal.OPERATOR):
        yield


@pytest.fixture
def db_sessionmaker(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(db_engine)


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "auto_migrate": True,
        "seed_demo_agent": False,
        "log_level": "warning",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@asynccontextmanager
async def served(application: FastAPI) -> AsyncIterator[FastAPI]:
    """The app's lifespan entered and left by one task, as a server does (a fixture's
    setup and teardown may run in different tasks; task groups started in the
    lifespan must be left by the task that entered them)."""
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def lifespan() -> None:
        try:
            async with application.router.lifespan_context(application):
                started.set_result(None)
                await stop.wait()
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            raise

    task = asyncio.create_task(lifespan())
    await started
    try:
        yield application
    finally:
        stop.set()
        await task


@pytest.fixture
async def app(settings: Settings, db_engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    async with served(create_app(settings)) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://agentd.test") as http:
        yield http


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove a rejected request changed nothing."""
    result: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = await connection.execute(select(table))
            result[table.name] = sorted((tuple(map(repr, row)) for row in rows), key=repr)
    return result


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIServer]:
    """A fake OpenAI-compatible server on 127.0.0.1, scripted with `enqueue`."""
    async with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def over_http_settings() -> dict[str, Any]:
    """Settings `over_http` takes beyond the fake's URL and key (override to add some)."""
    return {}


@pytest.fixture
async def over_http(
    database_url: str,
    db_engine: object,
    fake: FakeOpenAIServer,
    over_http_settings: dict[str, Any],
) -> AsyncIterator[LiveServer]:
    """The app on a real uvicorn, its `openai:` models at `fake` (one try per call)."""
    settings = make_settings(
        database_url,
        openai_base_url=fake.base_url,
        openai_api_key="sk-test",
        model_max_retries=1,
        **over_http_settings,
    )
    async with serving(settings) as server:
        yield server
