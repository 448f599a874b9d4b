"""The engine's `MemoryStore` over the database: each call one short transaction,
in the tenant of the run it serves (the principal the worker executes the run
as, taken from the run's row)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import principal
from app.engine.memory import Memory, MemoryChange, MemoryUpdate
from app.memories import repository
from app.tables import UserMemory


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_memory(row: UserMemory) -> Memory:
    return Memory(
        memory_id=row.memory_id,
        user_id=row.user_id,
        agent_id=row.agent_id,
        memory=row.memory,
        topics=list(row.topics),
        created_at=_iso(row.created_at),
        updated_at=_iso(row.updated_at),
    )


class StoredMemories:
    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self.maker = maker

    async def list_memories(self, user_id: str) -> list[Memory]:
        async with self.maker() as session:
            return [
                to_memory(row)
                for row in await repository.of_user(session, principal.tenant(), user_id)
            ]

    async def apply(
        self, user_id: str, agent_id: str, changes: Sequence[MemoryChange]
    ) -> MemoryUpdate:
        if not changes:
            return MemoryUpdate()
        async with self.maker() as session, session.begin():
            saved, deleted = await repository.apply_changes(
                session, principal.tenant(), user_id, agent_id, changes
            )
            memories = [to_memory(row) for row in saved]
        return MemoryUpdate(memories=memories, deleted_memory_ids=deleted)
