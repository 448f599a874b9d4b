"""The private names of SQLAlchemy's aiosqlite adapter and of aiosqlite that the
SQLite driver relies on (app/compat/sqlite.py); tests/test_sqlite_driver.py checks
its behaviour against SQLAlchemy's own adapter.

Fails when an upgrade of either leaves the versions checked or changes a name:
SQLite would then run on SQLAlchemy's own adapter (correct, but three or four
trips to the SQLite thread per statement)."""

from __future__ import annotations

import inspect

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)

from app.compat import sqlite as compat


def test_the_installed_versions_are_the_ones_checked() -> None:
    assert compat.ENABLED, "check app/compat/sqlite.py against the new versions, then widen them"
    assert isinstance(compat.dbapi(), AsyncAdapt_aiosqlite_dbapi)


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_adapters_private_steps_are_where_the_driver_overrides_them() -> None:
    connection = AsyncAdapt_aiosqlite_connection
    assert hasattr(connection, "_cursor_cls")
    assert "_execute_mutex" in {n for k in connection.__mro__ for n in getattr(k, "__slots__", ())}
    cursor = AsyncAdapt_aiosqlite_cursor
    assert parameters(cursor._execute_async) == ["self", "operation", "parameters"]
    assert parameters(cursor._executemany_async) == ["self", "operation", "seq_of_parameters"]
    assert inspect.iscoroutinefunction(cursor._async_soft_close)
    slots = {name for k in cursor.__mro__ for name in getattr(k, "__slots__", ())}
    assert {"_adapt_connection", "_connection", "_cursor", "_rows"} <= slots
    assert {"_soft_closed_memoized"} <= slots | set(dir(cursor))


async def test_aiosqlite_runs_a_function_on_its_thread_with_its_sqlite3_connection() -> None:
    async with aiosqlite.connect(":memory:") as conn:
        assert parameters(aiosqlite.Connection._execute)[:2] == ["self", "fn"]
        assert await conn._execute(lambda: conn._conn.execute("SELECT 41 + 1").fetchone()) == (42,)
