"""Shared by the writer and recorder tests: stored runs, and a transaction
factory that counts and can find the pool exhausted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.db import utcnow
from app.principal import DEFAULT_TENANT
from app.runs import repository
from app.sessions import repository as sessions


class CountingBegin:
    """`engine.begin`, counting transactions; the first `failures` find no connection."""

    def __init__(self, engine: AsyncEngine, failures: int = 0) -> None:
        self.engine = engine
        self.failures = failures
        self.transactions = 0

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        self.transactions += 1
        if self.failures > 0:
            self.failures -= 1
            raise PoolTimeout("QueuePool limit reached")
        async with self.engine.begin() as connection:
            yield connection

    def __call__(self) -> Any:
        return self._begin()


async def store_runs(
    maker: async_sessionmaker[AsyncSession],
    runs: dict[str, str],
    owner: str | None = None,
) -> None:
    """Running runs (run id -> session id), each in a new session, held by `owner`."""
    now = utcnow()
    async with maker() as session, session.begin():
        for run_id, session_id in runs.items():
            created = await sessions.create_session(
                session,
                {
                    "tenant_id": DEFAULT_TENANT,
                    "id": session_id,
                    "state": {},
                    "created_at": now,
                    "updated_at": now,
                },
            )
            assert created
            await repository.insert_run(
                session,
                {
                    "id": run_id,
                    "tenant_id": DEFAULT_TENANT,
                    "agent_id": "a",
                    "agent_version": 1,
                    "session_id": session_id,
                    "status": "running",
                    "model": "test:echo",
                    "input": {},
                    "request": {},
                    "metadata_": {},
                    "content_type": "str",
                    "last_seq": 0,
                    "cancel_requested": False,
                    "attempt": 1,
                    "lease_owner": owner,
                    "created_at": now,
                    "updated_at": now,
                },
            )
