"""Database access for users' memories. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, exists, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.engine.memory import MemoryChange
from app.tables import UserMemory


async def get(session: AsyncSession, memory_id: str) -> UserMemory | None:
    return await session.get(UserMemory, memory_id, populate_existing=True)


async def of_user(session: AsyncSession, user_id: str) -> list[UserMemory]:
    """The user's memories, oldest first."""
    rows = await session.scalars(
        select(UserMemory)
        .where(UserMemory.user_id == user_id)
        .order_by(UserMemory.created_at, UserMemory.memory_id)
    )
    return list(rows)


def _has_topic(session: AsyncSession, topic: str) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(UserMemory.topics, JSONB).contains([topic])
    each = func.json_each(UserMemory.topics).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value == topic))


async def list_page(
    session: AsyncSession,
    *,
    limit: int,
    before: tuple[datetime, str] | None,
    user_id: str | None = None,
    agent_id: str | None = None,
    topic: str | None = None,
) -> list[UserMemory]:
    """Newest first; `before` is the (created_at, memory_id) of the last one seen."""
    statement = select(UserMemory).order_by(
        UserMemory.created_at.desc(), UserMemory.memory_id.desc()
    )
    if user_id is not None:
        statement = statement.where(UserMemory.user_id == user_id)
    if agent_id is not None:
        statement = statement.where(UserMemory.agent_id == agent_id)
    if topic is not None:
        statement = statement.where(_has_topic(session, topic))
    if before is not None:
        created_at, last_id = before
        statement = statement.where(
            (UserMemory.created_at < created_at)
            | ((UserMemory.created_at == created_at) & (UserMemory.memory_id < last_id))
        )
    return list(await session.scalars(statement.limit(limit)))


async def apply_changes(
    session: AsyncSession, user_id: str, agent_id: str | None, changes: Sequence[MemoryChange]
) -> tuple[list[UserMemory], list[str]]:
    """Apply a memory model's changes to one user's memories: the memories added
    or updated, and the ids deleted. An `add` whose id exists updates it (a change
    applied again); a change to a missing or another user's memory is skipped."""
    saved: dict[str, UserMemory] = {}
    deleted: list[str] = []
    for change in changes:
        row = await get(session, change.memory_id)
        if row is not None and row.user_id != user_id:
            continue
        now = utcnow()
        if change.action == "delete":
            if row is not None:
                await session.execute(
                    delete(UserMemory).where(UserMemory.memory_id == change.memory_id)
                )
                saved.pop(change.memory_id, None)
                deleted.append(change.memory_id)
            continue
        if row is None:
            if change.action == "update":
                continue
            row = UserMemory(
                memory_id=change.memory_id,
                user_id=user_id,
                agent_id=agent_id,
                memory=change.memory or "",
                topics=change.topics or [],
                created_at=now,
                updated_at=now,
            )
            session.add(row)
        else:
            row.memory = change.memory or row.memory
            if change.topics is not None:
                row.topics = change.topics
            row.updated_at = now
        saved[row.memory_id] = row
        await session.flush()
    return list(saved.values()), deleted
