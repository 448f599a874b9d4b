"""Stored agents as the engine asks for them (handoff targets, guardrail agents),
in the tenant of the principal in effect (a run's own, in the worker)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from app import principal
from app.agents import repository
from app.agents.service import spec_of
from app.engine.spec import AgentSpec
from app.errors import AgentNotFound
from app.notify import ANY_AGENT


@dataclass(frozen=True, slots=True)
class Current:
    """An agent's newest version as read, with the `updated_at` it had then:
    every write of an agent (an edit; a delete and create again) changes it, so
    a statement can check in the database that the version is still current."""

    spec: AgentSpec
    updated_at: datetime


class StoredAgents:
    """The engine's AgentResolver over the database. A stored version never
    changes, so specs by (tenant, id, version) are cached; "the newest" is always
    read (`last_read` remembers it for statements that check it is still current)."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], cache_size: int = 1024) -> None:
        self._maker = maker
        self._cache: OrderedDict[tuple[str, str, int], AgentSpec] = OrderedDict()
        self._cache_size = cache_size
        self._last_read: dict[tuple[str, str], Current] = {}

    def forget(self, agent_id: str) -> None:
        """Drop the cached versions of `agent_id` in every tenant (`ANY_AGENT`: of
        every agent): it was deleted or created again (versions start at 1 again,
        so a cached version 1 may be another agent's)."""
        if agent_id == ANY_AGENT:
            self._cache.clear()
            self._last_read.clear()
            return
        for key in [key for key in self._cache if key[1] == agent_id]:
            del self._cache[key]
        for read in [read for read in self._last_read if read[1] == agent_id]:
            del self._last_read[read]

    async def current(self, db: AsyncConnection, agent_id: str) -> Current:
        """The newest version of an agent (AgentNotFound when there is none)."""
        key = (principal.tenant(), agent_id)
        found = await repository.current(db, agent_id)
        if found is None:
            self._last_read.pop(key, None)
            raise AgentNotFound(f"No agent {agent_id!r}.")
        version, spec, updated_at = found
        result = Current(spec_of(agent_id, version, spec), updated_at)
        # What was just read is what runs created from it execute, even if this
        # process missed the notice that the agent was created again.
        self._remember(key[0], result.spec)
        if key not in self._last_read and len(self._last_read) >= self._cache_size:
            self._last_read.pop(next(iter(self._last_read)))
        self._last_read[key] = result
        return result

    def last_read(self, tenant_id: str, agent_id: str) -> Current | None:
        """What `current` last found for `agent_id` of `tenant_id`: possibly stale
        (another replica may have edited it), so only for a statement that checks
        `updated_at` in the database."""
        return self._last_read.get((tenant_id, agent_id))

    def on_control(self, kind: str, payload: str) -> None:
        """A Notifier control handler: `agent:<id>` means forget it."""
        if kind == "agent":
            self.forget(payload)

    async def get_agent(self, agent_id: str, version: int | None = None) -> AgentSpec:
        tenant_id = principal.tenant()
        if version is not None:
            cached = self._cache.get((tenant_id, agent_id, version))
            if cached is not None:
                self._cache.move_to_end((tenant_id, agent_id, version))
                return cached
        async with self._maker() as session:
            spec = await load_spec(session, agent_id, version)
        self._remember(tenant_id, spec)
        return spec

    def _remember(self, tenant_id: str, spec: AgentSpec) -> None:
        key = (tenant_id, spec.id, spec.version)
        self._cache[key] = spec
        self._cache.move_to_end(key)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


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
