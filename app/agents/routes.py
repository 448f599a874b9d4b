"""HTTP routes of the agent definitions API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents import repository, service
from app.agents.schemas import AgentCreate, AgentRead, AgentUpdate, AgentVersionRead
from app.agents.service import Catalog
from app.deps import NotifierDep, SessionDep
from app.engine.spec import AGENT_ID_PATTERN
from app.errors import problems
from app.notify import Notifier
from app.pagination import CursorQuery, LimitQuery, Page, decode_cursor, page_of
from app.routing import StrictJSONRoute

router = APIRouter(prefix="/v1/agents", tags=["agents"], route_class=StrictJSONRoute)


async def get_catalog(request: Request) -> Catalog:
    """What definitions may name, built once from the settings."""
    catalog: Catalog = request.app.state.runtime.catalog
    return catalog


CatalogDep = Annotated[Catalog, Depends(get_catalog)]

AgentIdPath = Path(pattern=AGENT_ID_PATTERN, description="The agent's id (slug).")

NOT_FOUND = problems({404: "No such agent (`agent_not_found`)."})
INVALID = problems({422: "Invalid definition or query (`validation_error`)."})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**problems({409: "The id is taken (`agent_exists`)."}), **INVALID},
)
async def create_agent(
    body: AgentCreate, session: SessionDep, catalog: CatalogDep, notifier: NotifierDep
) -> AgentRead:
    """Create an agent definition (version 1)."""
    agent = await service.create(session, body, catalog)
    await _forget_everywhere(session, notifier, agent.id)
    return service.to_read(agent)


@router.get("", responses=INVALID)
async def list_agents(
    session: SessionDep, limit: LimitQuery = 50, cursor: CursorQuery = None
) -> Page[AgentRead]:
    """Agents ordered by id."""
    after = decode_cursor(cursor, str)[0] if cursor else None
    rows, next_cursor = page_of(
        await repository.list_page(session, limit=limit + 1, after=after),
        limit,
        lambda row: [row.id],
    )
    return Page(data=[service.to_read(row) for row in rows], next_cursor=next_cursor)


@router.get("/{agent_id}", responses=NOT_FOUND)
async def get_agent(session: SessionDep, agent_id: str = AgentIdPath) -> AgentRead:
    return service.to_read(await service.get(session, agent_id))


@router.get("/{agent_id}/versions", responses={**NOT_FOUND, **INVALID})
async def list_versions(
    session: SessionDep,
    agent_id: str = AgentIdPath,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[AgentVersionRead]:
    """Every saved version of the agent, newest first (each PATCH made one)."""
    await service.get(session, agent_id)
    before = decode_cursor(cursor, int)[0] if cursor else None
    rows, next_cursor = page_of(
        await repository.list_versions(session, agent_id, limit=limit + 1, before=before),
        limit,
        lambda row: [row.version],
    )
    return Page(data=[service.version_read(row) for row in rows], next_cursor=next_cursor)


@router.get(
    "/{agent_id}/versions/{version}",
    responses=problems({404: "No such agent or version (`agent_not_found`)."}),
)
async def get_version(
    session: SessionDep,
    agent_id: str = AgentIdPath,
    version: int = Path(ge=1, description="A version number."),
) -> AgentVersionRead:
    """The definition as it was at `version` (what runs pinned to it ran)."""
    return service.version_read(await service.get_version(session, agent_id, version))


@router.patch("/{agent_id}", responses={**NOT_FOUND, **INVALID})
async def update_agent(
    body: AgentUpdate, session: SessionDep, catalog: CatalogDep, agent_id: str = AgentIdPath
) -> AgentRead:
    """Change some fields; every accepted change makes a new `version`."""
    agent = await service.update(session, agent_id, body, catalog)
    return service.to_read(agent)


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_agent(
    session: SessionDep, notifier: NotifierDep, agent_id: str = AgentIdPath
) -> Response:
    """Delete an agent and its versions. Its past runs stay readable."""
    await service.delete(session, agent_id)
    await _forget_everywhere(session, notifier, agent_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _forget_everywhere(session: AsyncSession, notifier: Notifier, agent_id: str) -> None:
    """Every process drops what it cached of the agent's versions: versions start
    at 1 again after a delete. Other replicas hear it when the transaction commits;
    this one again after the commit, so no read racing the change re-caches the old."""
    await notifier.control(session, "agent", agent_id)
    await session.commit()
    notifier.dispatch_local("agent", agent_id)
