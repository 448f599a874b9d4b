"""Stored agents as the engine asks for them (handoff targets, guardrail agents)."""

from __future__ import annotations

from collections import OrderedDict

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.agents import repository
from app.agents.service import spec_of
from app.engine.spec import AgentSpec


class StoredAgents:
    """The engine's AgentResolver over the database. A stored version never
    changes, so specs by (id, version) are cached; "the newest" is always read."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], cache_size: int = 1024) -> None:
        self._maker = maker
        self._cache: OrderedDict[tuple[str, int], AgentSpec] = OrderedDict()
        self._cache_size = cache_size

    def forget(self, agent_id: str) -> None:
        """Drop the cached versions of `agent_id`: it was deleted or created again
        (versions start at 1 again, so a cached version 1 may be another agent's)."""
        for key in [key for key in self._cache if key[0] == agent_id]:
            del self._cache[key]

    def on_control(self, kind: str, payload: str) -> None:
        """A Notifier control handler: `agent:<id>` means forget it."""
        if kind == "agent":
            self.forget(payload)

    async def get_agent(self, agent_id: str, version: int | None = None) -> AgentSpec:
        if version is not None:
            cached = self._cache.get((agent_id, version))
            if cached is not None:
                self._cache.move_to_end((agent_id, version))
                return cached
        async with self._maker() as session:
            spec = await load_spec(session, agent_id, version)
        self._cache[(spec.id, spec.version)] = spec
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return spec


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
