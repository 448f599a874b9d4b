"""Stored agents as the engine asks for them (handoff targets, guardrail agents)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.agents import repository
from app.agents.service import spec_of
from app.engine.spec import AgentSpec


class StoredAgents:
    """The engine's AgentResolver over the database; short read-only sessions."""

    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self._maker = maker

    async def get_agent(self, agent_id: str, version: int | None = None) -> AgentSpec:
        async with self._maker() as session:
            return await load_spec(session, agent_id, version)


async def load_spec(session: AsyncSession, agent_id: str, version: int | None) -> AgentSpec:
    """The agent at `version` (the newest when None); KeyError when missing."""
    if version is None:
        agent = await repository.get(session, agent_id)
        if agent is None:
            raise KeyError(agent_id)
        return spec_of(agent.id, agent.version, agent.spec)
    stored = await repository.get_version(session, agent_id, version)
    if stored is None:
        raise KeyError(f"{agent_id}@{version}")
    return spec_of(agent_id, version, stored.spec)
