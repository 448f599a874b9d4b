"""Database access for sessions: the row, its state and the history of its
completed runs. Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.tables import Run, Session, SessionMessage
from app.worker.store import ACTIVE_STATUSES, SESSIONS, Db

_CREATE_SESSION = {
    name: dialect_insert(SESSIONS).on_conflict_do_nothing(index_elements=["id"])
    for name, dialect_insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))
}


async def create_session(session: Db, values: dict[str, Any]) -> bool:
    """Insert a session unless one with that id exists; True when this call created it."""
    bind = session.get_bind() if isinstance(session, AsyncSession) else session
    result = await session.execute(_CREATE_SESSION[bind.dialect.name], values)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def merge_session_state(db: Db, session_id: str, changes: dict[str, Any]) -> None:
    found = (
        await db.execute(
            select(SESSIONS.c.state).where(SESSIONS.c.id == session_id).with_for_update()
        )
    ).first()
    if found is not None:
        await db.execute(
            update(SESSIONS)
            .where(SESSIONS.c.id == session_id)
            .values(state={**(found[0] or {}), **changes}, updated_at=utcnow())
        )


async def active_run_of(db: Db, session_id: str) -> str | None:
    """The session's active run (None: free, or no such session)."""
    found = (
        await db.execute(select(SESSIONS.c.active_run_id).where(SESSIONS.c.id == session_id))
    ).first()
    return found[0] if found is not None else None


async def get_session(session: AsyncSession, session_id: str) -> Session | None:
    return await session.get(Session, session_id, populate_existing=True)


async def history(session: AsyncSession, session_id: str, num_runs: int) -> list[dict[str, Any]]:
    """The messages of the session's last `num_runs` completed runs, oldest first."""
    if num_runs <= 0:
        return []
    run_ids = (
        select(SessionMessage.run_id)
        .where(SessionMessage.session_id == session_id)
        .group_by(SessionMessage.run_id)
        .order_by(func.max(SessionMessage.id).desc())
        .limit(num_runs)
        .scalar_subquery()
    )
    rows = await session.scalars(
        select(SessionMessage.message)
        .where(SessionMessage.session_id == session_id, SessionMessage.run_id.in_(run_ids))
        .order_by(SessionMessage.id)
    )
    return list(rows)


async def delete_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(delete(Session).where(Session.id == session_id))


async def list_page(
    session: AsyncSession,
    *,
    limit: int,
    before: tuple[datetime, str] | None,
    user_id: str | None = None,
    agent_id: str | None = None,
) -> list[Session]:
    """Newest first; `before` is the (created_at, id) of the last one seen."""
    statement = select(Session).order_by(Session.created_at.desc(), Session.id.desc())
    if user_id is not None:
        statement = statement.where(Session.user_id == user_id)
    if agent_id is not None:
        statement = statement.where(Session.agent_id == agent_id)
    if before is not None:
        created_at, last_id = before
        statement = statement.where(
            (Session.created_at < created_at)
            | ((Session.created_at == created_at) & (Session.id < last_id))
        )
    return list(await session.scalars(statement.limit(limit)))


async def run_ids(session: AsyncSession, session_id: str) -> list[str]:
    """The session's runs, oldest first."""
    rows = await session.scalars(
        select(Run.id).where(Run.session_id == session_id).order_by(Run.id)
    )
    return list(rows)


async def messages(session: AsyncSession, session_id: str) -> list[dict[str, Any]]:
    """Every message of the session's completed runs, in order."""
    rows = await session.scalars(
        select(SessionMessage.message)
        .where(SessionMessage.session_id == session_id)
        .order_by(SessionMessage.id)
    )
    return list(rows)


async def active_run_in(session: AsyncSession, session_id: str) -> str | None:
    """A queued or running run of the session, if any (it may not hold the session yet)."""
    return await session.scalar(
        select(Run.id).where(Run.session_id == session_id, Run.status.in_(ACTIVE_STATUSES))
    )
