"""Database plumbing: engine and sessionmaker factories, the declarative Base,
and column types that mean the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import JSON, DateTime, MetaData, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import Select
from sqlalchemy.types import TypeDecorator

from app.compat import sqlite
from app.compat.sqlalchemy import direct_driver
from app.engine import jsontext

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL, JSON (text) on SQLite.
JsonType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {
        dict[str, Any]: JsonType,
        list[Any]: JsonType,
        datetime: UTCDateTime,
    }


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy own transaction boundaries; see _sqlite_begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Take the write lock up front: a deferred transaction that later writes can
    # fail at once with "database is locked" when another process wrote meanwhile.
    # Our driver sends it with the transaction's first statement (one trip less).
    dbapi_connection = connection.connection.dbapi_connection
    if isinstance(dbapi_connection, sqlite.OneTripConnection):
        dbapi_connection.defer_begin("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, *, pool_size: int = 30, max_overflow: int = 10) -> AsyncEngine:
    """An async engine configured for the backend behind `url` (JSON columns go
    through orjson: run state and output are written often)."""
    json_options: dict[str, Any] = {
        "json_serializer": jsontext.text,
        "json_deserializer": jsontext.loads,
    }
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection per process: SQLite has one writer anyway, and queueing
        # in the pool is cheaper than lock retries. Transactions are kept short.
        engine = create_async_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
            module=sqlite.dbapi() if "+aiosqlite" in url.split(":", 1)[0] else None,
            **json_options,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        pool_recycle=1800,
        **json_options,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def session_scope(
    maker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block ends cleanly, rolled back otherwise."""
    async with maker() as session, session.begin():
        yield session


# A statement's parameter names in SQL order, each with its bind processor.
_Binds: TypeAlias = tuple[tuple[str, Callable[[Any], Any] | None], ...]


class DriverStatement:
    """A Core statement that PostgreSQL runs on the asyncpg connection itself.

    Compiled once per dialect, its parameters converted by the bind processors
    SQLAlchemy itself would apply, so the SQL and the values are those of
    `AsyncConnection.execute`, without its per-call execution machinery, which
    costs more than the statement on the hot paths. Where `direct_driver` gives no
    connection, the statement goes through `AsyncConnection.execute`.
    """

    def __init__(self, statement: UpdateBase | TextClause | Select[Any]) -> None:
        self.statement = statement
        self._compiled: tuple[Dialect, str, _Binds] | None = None

    def bind(self, dialect: Dialect, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL for `dialect` and its positional arguments from `params`."""
        compiled = self._compiled
        if compiled is None or compiled[0] is not dialect:
            sql = self.statement.compile(dialect=dialect)
            binds = tuple(
                (name, sql.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in sql.positiontup or ()
            )
            compiled = self._compiled = (dialect, sql.string, binds)
        args = [
            params[name] if process is None else process(params[name])
            for name, process in compiled[2]
        ]
        return compiled[1], args

    async def first(
        self, conn: AsyncConnection, params: Mapping[str, Any]
    ) -> tuple[Any, ...] | None:
        """The first row the statement returns, or None. Outside a transaction
        SQLAlchemy began, the statement commits on its own (no autocommit switch
        needed). Should the driver fail, the statement runs again
        through `AsyncConnection.execute`, which raises SQLAlchemy's exceptions and
        invalidates a lost connection as usual (a statement that failed committed
        nothing; on a lost connection it fails again)."""
        driver = await direct_driver(conn)
        if driver is not None:
            sql, args = self.bind(conn.dialect, params)
            try:
                row = await driver.fetchrow(sql, *args)
            except Exception:
                pass
            else:
                return None if row is None else tuple(row)
        found = (await conn.execute(self.statement, params)).first()
        return None if found is None else tuple(found)

    async def execute(self, driver: Any, dialect: Dialect, params: Mapping[str, Any]) -> None:
        """Run it on `driver` (from `direct_driver`), inside the caller's transaction."""
        sql, args = self.bind(dialect, params)
        await driver.execute(sql, *args)

    async def executemany(
        self, driver: Any, dialect: Dialect, params: Sequence[Mapping[str, Any]]
    ) -> None:
        """Run it once per parameter set (the driver pipelines them), on `driver`."""
        if len(params) == 1:
            await self.execute(driver, dialect, params[0])
            return
        sql, first = self.bind(dialect, params[0])
        await driver.executemany(sql, [first, *(self.bind(dialect, one)[1] for one in params[1:])])
