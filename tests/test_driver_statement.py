"""DriverStatement: a Core statement PostgreSQL runs on the asyncpg connection
itself, with SQLAlchemy's SQL, values and errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import DriverStatement
from app.worker.store import SESSIONS

INSERT_SESSION = insert(SESSIONS).returning(SESSIONS.c.id, SESSIONS.c.state)


def session(session_id: str) -> dict[str, Any]:
    created = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone(timedelta(hours=2)))
    return {
        "tenant_id": "default",
        "id": session_id,
        "user_id": None,
        "agent_id": "a",
        "state": {"ünï": ["cödé", 1, 2.5, None, {"deep": True}], "n": 10**15},
        "active_run_id": None,
        "created_at": created,
        "updated_at": created.astimezone(UTC),
        "summary": None,
    }


async def rows(engine: AsyncEngine) -> dict[str, tuple[Any, ...]]:
    async with engine.connect() as connection:
        found = await connection.execute(select(SESSIONS).order_by(SESSIONS.c.id))
        return {row.id: tuple(row)[2:] for row in found}  # after tenant_id and id


async def test_it_stores_what_sqlalchemy_stores_and_commits_on_its_own(
    db_engine: AsyncEngine,
) -> None:
    statement = DriverStatement(INSERT_SESSION)
    async with db_engine.connect() as connection:
        returned = await statement.first(connection, session("driver"))
        if db_engine.dialect.name == "postgresql":
            assert not connection.in_transaction()  # committed by the server already
            assert "driver" in await rows(db_engine)
        else:
            await connection.commit()
        await connection.execute(INSERT_SESSION, session("core"))
        await connection.commit()
    assert returned == ("driver", session("driver")["state"])
    stored = await rows(db_engine)
    assert stored["driver"] == stored["core"]
    assert stored["driver"][4] == datetime(2026, 1, 2, 1, 4, 5, 678000, tzinfo=UTC)


async def test_a_failure_is_sqlalchemys_error_and_the_connection_stays_usable(
    db_engine: AsyncEngine,
) -> None:
    statement = DriverStatement(INSERT_SESSION)
    async with db_engine.connect() as connection:
        await statement.first(connection, session("twice"))
        await connection.commit()
        with pytest.raises(IntegrityError):
            await statement.first(connection, session("twice"))
        await connection.rollback()
        assert (await connection.execute(text("SELECT 2"))).scalar() == 2
        assert await statement.first(connection, session("after")) is not None
        await connection.commit()
    assert sorted(await rows(db_engine)) == ["after", "twice"]


async def test_statement_listeners_see_it(db_engine: AsyncEngine) -> None:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(db_engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db_engine.connect() as connection:
            await DriverStatement(INSERT_SESSION).first(connection, session("seen"))
            await connection.commit()
    finally:
        event.remove(db_engine.sync_engine, "before_cursor_execute", record)
    assert [sql for sql in seen if sql.startswith("INSERT INTO sessions")]
    assert "seen" in await rows(db_engine)
