"""SQLAlchemy: whether an engine's statements may skip its execution machinery.

`app.db.DriverStatement` runs the hot statements of PostgreSQL runs on the
asyncpg connection itself, with the SQL and bind processing SQLAlchemy would
use (compiled once): the blocking-run bar at concurrency 32 needs the CPU it
saves. It may do so only while no `before_cursor_execute` listener (tracing,
statement counts) needs to see every statement; SQLAlchemy's public `event`
API tells whether one given function listens, not whether any does, so this
reads the engine's `dispatch`. Outside the versions below `direct_driver`
answers None and every statement goes through `AsyncConnection.execute`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.compat import supported

SQLALCHEMY = ("2.1", "2.2")  # the versions checked (tests/compat/test_sqlalchemy.py)
ENABLED = supported("sqlalchemy", *SQLALCHEMY, what="Engine.dispatch.before_cursor_execute")


def has_cursor_listeners(conn: AsyncConnection) -> bool:
    """Whether a `before_cursor_execute` listener is set on `conn`'s engine."""
    return bool(conn.sync_engine.dispatch.before_cursor_execute)


async def direct_driver(conn: AsyncConnection) -> Any | None:
    """The asyncpg connection under `conn`, for `DriverStatement`s; None for other
    drivers, for an engine with `before_cursor_execute` listeners, which must see
    every statement, and outside the versions checked."""
    if not ENABLED or conn.dialect.driver != "asyncpg" or has_cursor_listeners(conn):
        return None
    return (await conn.get_raw_connection()).driver_connection
