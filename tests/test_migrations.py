"""Migrations: upgrade to head and downgrade to base on both backends, and the
models match the newest revision."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from app import migrate
from app.db import create_engine
from app.tables import Base
from tests.conftest import BACKENDS, create_postgres_database, drop_postgres_database

TABLES = {
    *("agents", "agent_versions", "sessions", "runs", "run_events", "session_messages"),
    *("run_cancels", "idempotency_keys"),
}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_upgrade_head_then_downgrade_base(backend: str, tmp_path: object) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/migrations.db"
    else:
        url = await create_postgres_database("agentd_migrations")
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()

        def check(connection: Connection) -> None:
            names = set(inspect(connection).get_table_names())
            assert names >= TABLES
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            assert diff == [], diff

        async with engine.connect() as connection:
            await connection.run_sync(check)

        await migrate.downgrade(engine, "base")
        assert await migrate.current_revision(engine) is None

        def empty(connection: Connection) -> None:
            assert not TABLES & set(inspect(connection).get_table_names())

        async with engine.connect() as connection:
            await connection.run_sync(empty)
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()
        if backend == "postgres":
            await drop_postgres_database(url)


async def test_concurrent_upgrades_on_postgres_take_turns() -> None:
    """Replicas starting together: every upgrade succeeds and the schema is at head."""
    import asyncio

    url = await create_postgres_database("agentd_migrate_race")
    engines = [create_engine(url) for _ in range(3)]
    try:
        async with asyncio.timeout(60):  # without the lock the upgrades deadlock
            await asyncio.gather(*(migrate.upgrade(engine) for engine in engines))
        assert await migrate.current_revision(engines[0]) == migrate.head_revision()
    finally:
        for engine in engines:
            await engine.dispose()
        await drop_postgres_database(url)
