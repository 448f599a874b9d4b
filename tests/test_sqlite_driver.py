"""The SQLite driver: one trip to aiosqlite's thread per statement, with the
same results, row counts and errors as SQLAlchemy's own adapter."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from app.compat import sqlite as sqlite_driver
from app.db import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The calls made on aiosqlite's thread, by name."""
    made: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield made


async def test_each_statement_is_one_trip(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.connect() as conn:
        await conn.exec_driver_sql("SELECT 1")  # connected; the pool is warm
    trips.clear()
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": "a"})
        rows = (await conn.execute(text("SELECT id, name FROM items"))).all()
    assert [tuple(row) for row in rows] == [(1, "a")]
    # BEGIN IMMEDIATE goes with the INSERT, the SELECT brings its rows, then COMMIT;
    # the pool's rollback on return is skipped (nothing open). SQLAlchemy's own
    # adapter makes three or four trips per statement, and one for each of those.
    assert trips == ["call", "call", "commit"]


async def test_the_write_lock_is_taken_with_the_first_statement(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "driver.db", timeout=0.05, isolation_level=None)
    try:
        async with engine.begin() as conn:
            # BEGIN IMMEDIATE went with this read: another writer is locked out.
            await conn.execute(text("SELECT count(*) FROM items"))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # committed: free again
        other.execute("ROLLBACK")
        async with engine.begin():
            pass  # a transaction with no statement costs nothing and holds nothing
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_a_cancelled_statement_leaves_the_connection_clean(engine: AsyncEngine) -> None:
    async def insert_then_wait() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO items (name) VALUES ('gone')"))
            await asyncio.sleep(30)

    task = asyncio.create_task(insert_then_wait())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with engine.begin() as conn:  # the same (only) connection, rolled back
        await conn.execute(text("INSERT INTO items (name) VALUES ('kept')"))
    async with engine.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM items"))).scalars()
        assert list(names) == ["kept"]


async def test_results_counts_and_errors_are_the_drivers(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        inserted = await conn.execute(text("INSERT INTO items (name) VALUES (:n)"), {"n": "x"})
        assert inserted.lastrowid == 1
        many = await conn.execute(
            text("INSERT INTO items (name) VALUES (:n)"), [{"n": "y"}, {"n": "z"}]
        )
        assert many.rowcount == 2
        updated = await conn.execute(text("UPDATE items SET name = name || '!' WHERE id > 1"))
        assert updated.rowcount == 2
        assert (await conn.execute(text("SELECT count(*) FROM items"))).scalar_one() == 3
        # A result read in parts, then closed early: the rest is dropped, not leaked.
        result = await conn.execute(text("SELECT name FROM items ORDER BY id"))
        assert result.fetchone() == ("x",)
        assert result.fetchmany(1) == [("y!",)]
        result.close()
        empty = await conn.execute(text("SELECT name FROM items WHERE id > 99"))
        assert empty.all() == []
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO items (name) VALUES ('q')"))
            await conn.execute(text("INSERT INTO items (name) VALUES ('x')"))  # not unique
    async with engine.connect() as conn:  # the failed transaction left nothing behind
        names = (await conn.execute(text("SELECT name FROM items ORDER BY id"))).scalars()
        assert list(names) == ["x", "y!", "z!"]


async def test_a_closed_connection_ends_its_transaction_quietly(tmp_path: Path) -> None:
    def close_then_end() -> None:
        driver = sqlite_driver.dbapi()
        assert driver is not None
        conn = driver.connect(str(tmp_path / "closed.db"))
        conn.close()
        # As SQLAlchemy's own adapter: nothing to roll back or commit, no error.
        conn.rollback()
        conn.commit()

    await greenlet_spawn(close_then_end)
