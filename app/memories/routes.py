"""HTTP routes of users' memories: list (by user, agent, topic), create, read,
edit, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from app.db import utcnow
from app.deps import SessionDep
from app.errors import MemoryNotFound, problems
from app.ids import new_id
from app.memories import repository
from app.memories.schemas import MemoryCreate, MemoryRead, MemoryUpdate
from app.pagination import (
    INVALID_PAGE,
    CursorQuery,
    LimitQuery,
    Page,
    decode_time_cursor,
    page_of,
    time_key,
)
from app.routing import StrictJSONRoute
from app.tables import UserMemory

router = APIRouter(prefix="/v1/memories", tags=["memories"], route_class=StrictJSONRoute)

MemoryIdPath = Annotated[str, Path(max_length=64)]
NOT_FOUND = problems({404: "No such memory (`memory_not_found`)."})


def _read(row: UserMemory) -> MemoryRead:
    return MemoryRead(
        memory_id=row.memory_id,
        user_id=row.user_id,
        agent_id=row.agent_id,
        memory=row.memory,
        topics=list(row.topics),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _get(session: SessionDep, memory_id: str) -> UserMemory:
    row = await repository.get(session, memory_id)
    if row is None:
        raise MemoryNotFound(f"No memory {memory_id!r}.")
    return row


@router.get("", responses=INVALID_PAGE)
async def list_memories(
    session: SessionDep,
    user_id: Annotated[str | None, Query(max_length=128)] = None,
    agent_id: Annotated[str | None, Query(max_length=64)] = None,
    topic: Annotated[str | None, Query(max_length=100)] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[MemoryRead]:
    """Memories, newest first; `topic` keeps those tagged with it."""
    before = decode_time_cursor(cursor) if cursor else None
    rows, next_cursor = page_of(
        await repository.list_page(
            session, limit=limit + 1, before=before, user_id=user_id, agent_id=agent_id, topic=topic
        ),
        limit,
        lambda row: time_key(row.created_at, row.memory_id),
    )
    return Page(data=[_read(row) for row in rows], next_cursor=next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems({422: "Invalid body."}))
async def create_memory(body: MemoryCreate, session: SessionDep) -> MemoryRead:
    """Store a memory of a user; it goes into the context of that user's runs on
    agents with `memory.add_to_context`. A credential bound to a user stores
    only that user's memories (403 `forbidden`)."""
    now = utcnow()
    row = repository.new(
        {
            "memory_id": new_id(),
            "user_id": body.user_id,
            "agent_id": body.agent_id,
            "memory": body.memory,
            "topics": list(body.topics),
            "created_at": now,
            "updated_at": now,
        }
    )
    session.add(row)
    await session.flush()
    return _read(row)


@router.get("/{memory_id}", responses=NOT_FOUND)
async def get_memory(session: SessionDep, memory_id: MemoryIdPath) -> MemoryRead:
    return _read(await _get(session, memory_id))


@router.patch("/{memory_id}", responses={**NOT_FOUND, **problems({422: "Invalid body."})})
async def update_memory(
    body: MemoryUpdate, session: SessionDep, memory_id: MemoryIdPath
) -> MemoryRead:
    """Replace the fields sent."""
    row = await _get(session, memory_id)
    changes = body.changes()
    if changes:
        for name, value in changes.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        await session.flush()
    return _read(row)


@router.delete("/{memory_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_memory(session: SessionDep, memory_id: MemoryIdPath) -> Response:
    row = await _get(session, memory_id)
    await session.delete(row)
    await session.flush()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
