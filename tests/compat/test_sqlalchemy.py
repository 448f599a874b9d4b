"""Whether an engine has statement listeners (app/compat/sqlalchemy.py).

Fails when an upgrade of SQLAlchemy leaves the versions `Engine.dispatch` was
checked against, or when it no longer tells listeners apart: PostgreSQL's hot
statements would then go through `AsyncConnection.execute` (correct, but over
the CPU the blocking-run bar allows), or skip a tracing listener."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

from app.compat import sqlalchemy as compat


def test_the_installed_version_is_the_one_checked() -> None:
    assert compat.ENABLED, "check has_cursor_listeners against the new version, then widen it"


async def test_a_cursor_listener_is_seen_while_it_listens() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")

    def listener(*_: Any) -> None:
        return None

    try:
        async with engine.connect() as conn:
            assert not compat.has_cursor_listeners(conn)
            event.listen(engine.sync_engine, "before_cursor_execute", listener)
            assert compat.has_cursor_listeners(conn)
            assert await compat.direct_driver(conn) is None  # not asyncpg anyway
            event.remove(engine.sync_engine, "before_cursor_execute", listener)
            assert not compat.has_cursor_listeners(conn)
    finally:
        await engine.dispose()
