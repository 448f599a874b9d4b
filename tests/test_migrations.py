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
    *("run_cancels", "idempotency_keys", "api_keys"),
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


@pytest.mark.parametrize("backend", BACKENDS)
async def test_existing_rows_move_to_the_default_tenant(backend: str, tmp_path: object) -> None:
    """Rows written before tenants keep every reference and belong to `default`
    (on SQLite the rebuilt tables must not cascade-delete what refers to them)."""
    from datetime import UTC, datetime

    from sqlalchemy import bindparam, text

    from app.db import UTCDateTime

    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/tenants.db"
    else:
        url = await create_postgres_database("agentd_tenants")
    engine = create_engine(url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        await migrate.upgrade(engine, "0001")
        async with engine.begin() as connection:
            for statement in (
                "INSERT INTO agents (id, name, version, spec, created_at, updated_at)"
                " VALUES ('a', 'A', 1, '{}', :now, :now)",
                "INSERT INTO agent_versions (agent_id, version, spec, created_at)"
                " VALUES ('a', 1, '{}', :now)",
                "INSERT INTO sessions (id, state, created_at, updated_at)"
                " VALUES ('s', '{}', :now, :now)",
                "INSERT INTO runs (id, agent_id, agent_version, session_id, status, model, input,"
                " request, content_type, metadata, last_seq, cancel_requested, attempt,"
                " created_at, updated_at) VALUES ('r', 'a', 1, 's', 'completed', '', '{}', '{}',"
                " 'str', '{}', 1, false, 1, :now, :now)",
                "INSERT INTO run_events (run_id, seq, type, data, created_at)"
                " VALUES ('r', 1, 'RunCompleted', '{}', :now)",
                "INSERT INTO session_messages (session_id, run_id, position, message, created_at)"
                " VALUES ('s', 'r', 0, '{}', :now)",
            ):
                stamped = text(statement).bindparams(bindparam("now", type_=UTCDateTime()))
                await connection.execute(stamped, {"now": now})
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            for table in ("agents", "agent_versions", "sessions", "runs", "session_messages"):
                rows = (await connection.execute(text(f"SELECT tenant_id FROM {table}"))).all()
                assert rows == [("default",)], table
            events = await connection.execute(text("SELECT count(*) FROM run_events"))
            assert events.scalar() == 1
        await migrate.downgrade(engine, "0001")
        async with engine.connect() as connection:
            runs = await connection.execute(text("SELECT id, session_id FROM runs"))
            assert runs.all() == [("r", "s")]
    finally:
        await engine.dispose()
        if backend == "postgres":
            await drop_postgres_database(url)
