"""HTTP routes of sessions: list, read, history, state, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from app.db import utcnow
from app.deps import SessionDep
from app.errors import SessionBusy, SessionNotFound, problems
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
from app.sessions import repository
from app.sessions.schemas import SessionMessages, SessionRead, SessionUpdate
from app.tables import Session

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], route_class=StrictJSONRoute)

SessionIdPath = Annotated[str, Path(max_length=128)]
NOT_FOUND = problems({404: "No such session (`session_not_found`)."})


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = value
    return merged


async def _read(session: SessionDep, stored: Session) -> SessionRead:
    run_ids = await repository.run_ids(session, stored.id)
    return SessionRead(
        session_id=stored.id,
        user_id=stored.user_id,
        agent_id=stored.agent_id,
        session_state=stored.state,
        active_run_id=stored.active_run_id,
        run_ids=run_ids,
        summary=stored.summary,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
    )


async def _get(session: SessionDep, session_id: str) -> Session:
    stored = await repository.get_session(session, session_id)
    if stored is None:
        raise SessionNotFound(f"No session {session_id!r}.")
    return stored


@router.get("", responses=INVALID_PAGE)
async def list_sessions(
    session: SessionDep,
    user_id: str | None = None,
    agent_id: str | None = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[SessionRead]:
    """Sessions, newest first."""
    before = decode_time_cursor(cursor) if cursor else None
    rows, next_cursor = page_of(
        await repository.list_page(
            session, limit=limit + 1, before=before, user_id=user_id, agent_id=agent_id
        ),
        limit,
        lambda row: time_key(row.created_at, row.id),
    )
    return Page(data=[await _read(session, row) for row in rows], next_cursor=next_cursor)


@router.get("/{session_id}", responses=NOT_FOUND)
async def get_session(session: SessionDep, session_id: SessionIdPath) -> SessionRead:
    """The session's state and its runs."""
    return await _read(session, await _get(session, session_id))


@router.get("/{session_id}/messages", responses=NOT_FOUND)
async def get_messages(session: SessionDep, session_id: SessionIdPath) -> SessionMessages:
    """The history of completed runs as an input list, ready to send as `input`."""
    await _get(session, session_id)
    messages = await repository.messages(session, session_id)
    return SessionMessages(session_id=session_id, messages=messages)


@router.patch(
    "/{session_id}",
    responses={
        **NOT_FOUND,
        **problems(
            {
                409: "A queued or running run would overwrite the state when it ends "
                "(`session_busy`, with `active_run_id`).",
                422: "Invalid body.",
            }
        ),
    },
)
async def update_session(
    body: SessionUpdate, session: SessionDep, session_id: SessionIdPath
) -> SessionRead:
    """Merge `session_state` into the stored state (null removes a key). Refused
    while a queued or running run of the session is active (its end stores the
    state it worked on); a paused run picks up the new state when continued."""
    stored = await _get(session, session_id)
    active = await repository.active_run_in(session, session_id)
    if active is not None:
        raise SessionBusy(
            f"Session {session_id!r} has an active run ({active}): its end stores the "
            "session state; change it after the run.",
            extra={"active_run_id": active},
        )
    stored.state = merge_patch(stored.state, body.session_state)
    stored.updated_at = utcnow()
    await session.flush()
    return await _read(session, stored)


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**NOT_FOUND, **problems({409: "A run is active (`session_busy`)."})},
)
async def delete_session(session: SessionDep, session_id: SessionIdPath) -> Response:
    """Delete a session with its runs, events and history. Cancel its active run first."""
    stored = await _get(session, session_id)
    active = await repository.active_run_in(session, session_id)
    if active is not None or stored.active_run_id is not None:
        raise SessionBusy(
            f"Session {session_id!r} has an active run.",
            extra={"active_run_id": active or stored.active_run_id},
        )
    await repository.delete_session(session, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
