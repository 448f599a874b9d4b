"""Request dependencies as `Annotated` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.agents.resolver import StoredAgents
from app.agents.service import Catalog
from app.config import Settings
from app.engine.loop import Runner
from app.runs.creation import RunCreations
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


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.runtime.catalog
    return catalog


SessionDep = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]


async def get_manager(request: Request) -> RunManager:
    manager: RunManager = request.app.state.manager
    return manager


async def get_runner(request: Request) -> Runner:
    runner: Runner = request.app.state.runner
    return runner


ManagerDep = Annotated[RunManager, Depends(get_manager)]
RunnerDep = Annotated[Runner, Depends(get_runner)]


@dataclass(frozen=True, slots=True)
class RunServices:
    """What starting a run needs from the process, read off the app's state by the
    run route: it is called without FastAPI's dependency solving (`@direct`),
    and opens its own connection (`engine.connect()`) unless the run is stored
    with others (`creations`)."""

    engine: AsyncEngine
    manager: RunManager
    runner: Runner
    agents: StoredAgents
    creations: RunCreations


def run_services(request: Request) -> RunServices:
    services: RunServices = request.app.state.run_services
    return services
