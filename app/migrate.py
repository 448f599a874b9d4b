"""Schema migrations from inside the service: upgrade at start-up, and the
revision check behind /readyz."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def _project_dir() -> Path:
    """Where alembic.ini and migrations/ live: beside the `app` package in a
    checkout or image, else the working directory."""
    beside = Path(__file__).resolve().parent.parent
    return beside if (beside / "migrations").is_dir() else Path.cwd()


PROJECT_DIR = _project_dir()
LOCK_KEY = 0x61_67_65_6E_74_64  # "agentd"


def alembic_config() -> Config:
    config = Config(str(PROJECT_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_DIR / "migrations"))
    return config


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def set_sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    """SQLite rebuilds a table to change it (batch mode), and with foreign keys on,
    dropping the old table would delete the rows referencing it (ON DELETE
    CASCADE). The pragma works only outside a transaction: it goes to the
    driver's connection before SQLAlchemy begins one."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def check_sqlite_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration left rows with broken references: {broken[:5]}")


async def _migrate(engine: AsyncEngine, step: Callable[[Config], None]) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        step(config)

    if engine.dialect.name != "sqlite":
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Replicas starting together migrate one at a time; the rest find head.
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY}
                )
            await connection.run_sync(run)
        return
    async with engine.connect() as connection:
        await connection.run_sync(set_sqlite_foreign_keys, False)
        try:
            async with connection.begin():
                await connection.run_sync(run)
                await connection.run_sync(check_sqlite_foreign_keys)
        finally:
            await connection.run_sync(set_sqlite_foreign_keys, True)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _migrate(engine, lambda config: command.upgrade(config, revision))


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    await _migrate(engine, lambda config: command.downgrade(config, revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)
