"""Database access for agent definitions, within the current principal's tenant
(agent ids are unique per tenant). Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import principal
from app.tables import Agent, AgentVersion

AGENTS = cast(Table, Agent.__table__)
_CURRENT = select(AGENTS.c.version, AGENTS.c.spec, AGENTS.c.updated_at).where(
    AGENTS.c.tenant_id == bindparam("tenant_id"), AGENTS.c.id == bindparam("agent_id")
)


async def current(
    db: AsyncConnection, agent_id: str
) -> tuple[int, dict[str, Any], datetime] | None:
    """The agent's newest version, its definition and when it was last written
    (a Core read: run creation asks)."""
    params = {"tenant_id": principal.tenant(), "agent_id": agent_id}
    row = (await db.execute(_CURRENT, params)).first()
    return (row[0], row[1], row[2]) if row is not None else None


async def get(session: AsyncSession, agent_id: str, *, for_update: bool = False) -> Agent | None:
    statement = select(Agent).where(Agent.tenant_id == principal.tenant(), Agent.id == agent_id)
    if for_update:
        statement = statement.with_for_update()
    result: Agent | None = await session.scalar(statement)
    return result


async def get_version(session: AsyncSession, agent_id: str, version: int) -> AgentVersion | None:
    return await session.get(AgentVersion, (principal.tenant(), agent_id, version))


async def existing_ids(session: AsyncSession, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    rows = await session.scalars(
        select(Agent.id).where(Agent.tenant_id == principal.tenant(), Agent.id.in_(set(ids)))
    )
    return set(rows)


async def list_page(session: AsyncSession, *, limit: int, after: str | None) -> list[Agent]:
    statement = (
        select(Agent).where(Agent.tenant_id == principal.tenant()).order_by(Agent.id).limit(limit)
    )
    if after is not None:
        statement = statement.where(Agent.id > after)
    return list(await session.scalars(statement))


async def list_versions(
    session: AsyncSession, agent_id: str, *, limit: int, before: int | None
) -> list[AgentVersion]:
    """The agent's saved versions, newest first."""
    statement = (
        select(AgentVersion)
        .where(AgentVersion.tenant_id == principal.tenant(), AgentVersion.agent_id == agent_id)
        .order_by(AgentVersion.version.desc())
        .limit(limit)
    )
    if before is not None:
        statement = statement.where(AgentVersion.version < before)
    return list(await session.scalars(statement))
