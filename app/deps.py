"""Request dependencies as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.agents.resolver import StoredAgents
from app.agents.service import Catalog
from app.config import Settings
from app.engine.loop import Runner
from app.worker.manager import RunManager


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def get_db_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    """A Core connection with one transaction, committed before the response is
    sent: for the hot paths, which need no ORM objects. A route that goes on
    waiting (for a run) closes it first, giving the connection back to the pool."""
    async with request.app.state.engine.connect() as connection:
        try:
            yield connection
            if not connection.closed:
                await connection.commit()
        except BaseException:
            if not connection.closed:
                await connection.rollback()
            raise


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.runtime.catalog
    return catalog


SessionDep = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
ConnectionDep = Annotated[AsyncConnection, Depends(get_db_connection, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]


async def get_manager(request: Request) -> RunManager:
    manager: RunManager = request.app.state.manager
    return manager


async def get_runner(request: Request) -> Runner:
    runner: Runner = request.app.state.runner
    return runner


async def get_agents(request: Request) -> StoredAgents:
    agents: StoredAgents = request.app.state.agents
    return agents


ManagerDep = Annotated[RunManager, Depends(get_manager)]
RunnerDep = Annotated[Runner, Depends(get_runner)]
AgentsDep = Annotated[StoredAgents, Depends(get_agents)]
