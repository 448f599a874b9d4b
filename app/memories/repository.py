"""Database access for users' memories, within the current principal's reach
(its tenant, and its user when it has one; memory ids are unique per tenant),
or of one tenant's user for the memory work of a run. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from app import principal
from app.db import utcnow
from app.engine.memory import MemoryChange
from app.errors import Forbidden
from app.tables import UserMemory


def _visible(statement: Any) -> Any:
    """`statement` limited to the memories the current principal may see."""
    return principal.within_reach(statement, UserMemory.tenant_id, UserMemory.user_id)


async def get(session: AsyncSession, memory_id: str) -> UserMemory | None:
    """The memory, if the current principal may see it."""
    found: UserMemory | None = await session.scalar(
        _visible(select(UserMemory).where(UserMemory.memory_id == memory_id)).execution_options(
            populate_existing=True
        )
    )
    return found


def new(values: dict[str, Any]) -> UserMemory:
    """A memory of the current principal's tenant (not added to the session); a
    principal bound to a user stores only that user's memories (Forbidden)."""
    who = principal.current()
    if not who.sees_user(values["user_id"]):
        raise Forbidden(f"This credential acts for user {who.user_id!r} only.")
    return UserMemory(tenant_id=who.tenant_id, **values)


async def of_user(session: AsyncSession, tenant_id: str, user_id: str) -> list[UserMemory]:
    """The memories of the tenant's user, oldest first."""
    rows = await session.scalars(
        select(UserMemory)
        .where(UserMemory.tenant_id == tenant_id, UserMemory.user_id == user_id)
        .order_by(UserMemory.created_at, UserMemory.memory_id)
    )
    return list(rows)


async def _of_tenant(session: AsyncSession, tenant_id: str, memory_id: str) -> UserMemory | None:
    return await session.get(UserMemory, (tenant_id, memory_id), populate_existing=True)


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
    statement = _visible(select(UserMemory)).order_by(
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
    session: AsyncSession,
    tenant_id: str,
    user_id: str,
    agent_id: str | None,
    changes: Sequence[MemoryChange],
) -> tuple[list[UserMemory], list[str]]:
    """Apply a memory model's changes to the memories of one user of a tenant:
    the memories added or updated, and the ids deleted. An `add` whose id exists
    updates it (a change applied again); a change to a missing or another user's
    memory is skipped (another tenant's is not seen at all)."""
    saved: dict[str, UserMemory] = {}
    deleted: list[str] = []
    for change in changes:
        row = await _of_tenant(session, tenant_id, change.memory_id)
        if row is not None and row.user_id != user_id:
            continue
        now = utcnow()
        if change.action == "delete":
            if row is not None:
                await session.execute(
                    delete(UserMemory).where(
                        UserMemory.tenant_id == tenant_id,
                        UserMemory.memory_id == change.memory_id,
                    )
                )
                saved.pop(change.memory_id, None)
                deleted.append(change.memory_id)
            continue
        if row is None:
            if change.action == "update":
                continue
            row = UserMemory(
                tenant_id=tenant_id,
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
