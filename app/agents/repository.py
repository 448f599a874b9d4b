"""Database access for agent definitions. Never commits."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.tables import Agent, AgentVersion


async def get(session: AsyncSession, agent_id: str, *, for_update: bool = False) -> Agent | None:
    statement = select(Agent).where(Agent.id == agent_id)
    if for_update:
        statement = statement.with_for_update()
    result: Agent | None = await session.scalar(statement)
    return result


async def get_version(session: AsyncSession, agent_id: str, version: int) -> AgentVersion | None:
    return await session.get(AgentVersion, (agent_id, version))


async def existing_ids(session: AsyncSession, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    rows = await session.scalars(select(Agent.id).where(Agent.id.in_(set(ids))))
    return set(rows)


async def list_page(session: AsyncSession, *, limit: int, after: str | None) -> list[Agent]:
    statement = select(Agent).order_by(Agent.id).limit(limit)
    if after is not None:
        statement = statement.where(Agent.id > after)
    return list(await session.scalars(statement))
