"""Database access for sessions: the row, its state and the history of its
completed runs, within the current principal's reach (its tenant, and its user
when it has one; session ids are unique per tenant). Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import principal
from app.db import utcnow
from app.tables import Run, Session, SessionMessage
from app.worker.store import ACTIVE_STATUSES, SESSIONS, Db

_CREATE_SESSION = {
    name: dialect_insert(SESSIONS).on_conflict_do_nothing(index_elements=["tenant_id", "id"])
    for name, dialect_insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))
}


def _this(session_id: str) -> Any:
    """The session `session_id` within the current principal's reach: of its
    tenant, and of its user when it has one (a Core condition)."""
    who = principal.current()
    this = (SESSIONS.c.tenant_id == who.tenant_id) & (SESSIONS.c.id == session_id)
    return this if who.user_id is None else this & (SESSIONS.c.user_id == who.user_id)


def _visible(statement: Any) -> Any:
    """`statement` limited to the sessions the current principal may see."""
    return principal.within_reach(statement, Session.tenant_id, Session.user_id)


async def create_session(session: Db, values: dict[str, Any]) -> bool:
    """Insert a session unless its tenant has one with that id; True when this
    call created it."""
    bind = session.get_bind() if isinstance(session, AsyncSession) else session
    result = await session.execute(_CREATE_SESSION[bind.dialect.name], values)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def reachable(db: Db, session_id: str) -> bool:
    """Whether the session, known to exist in the current tenant, is within the
    current principal's reach (another user's is not)."""
    if principal.current().user_id is None:
        return True  # the caller found it in the tenant
    found = await db.execute(select(SESSIONS.c.id).where(_this(session_id)))
    return found.first() is not None


async def merge_session_state(db: Db, session_id: str, changes: dict[str, Any]) -> None:
    found = (
        await db.execute(select(SESSIONS.c.state).where(_this(session_id)).with_for_update())
    ).first()
    if found is not None:
        await db.execute(
            update(SESSIONS)
            .where(_this(session_id))
            .values(state={**(found[0] or {}), **changes}, updated_at=utcnow())
        )


async def active_run_of(db: Db, session_id: str) -> str | None:
    """The session's active run (None: free, or no such session)."""
    found = (await db.execute(select(SESSIONS.c.active_run_id).where(_this(session_id)))).first()
    return found[0] if found is not None else None


async def get_session(session: AsyncSession, session_id: str) -> Session | None:
    """The session, if the current principal may see it."""
    found: Session | None = await session.scalar(
        _visible(select(Session).where(Session.id == session_id)).execution_options(
            populate_existing=True
        )
    )
    return found


async def history(session: AsyncSession, session_id: str, num_runs: int) -> list[dict[str, Any]]:
    """The messages of the session's last `num_runs` completed runs, oldest first."""
    if num_runs <= 0:
        return []
    mine = (SessionMessage.tenant_id == principal.tenant()) & (
        SessionMessage.session_id == session_id
    )
    run_ids = (
        select(SessionMessage.run_id)
        .where(mine)
        .group_by(SessionMessage.run_id)
        .order_by(func.max(SessionMessage.id).desc())
        .limit(num_runs)
        .scalar_subquery()
    )
    rows = await session.scalars(
        select(SessionMessage.message)
        .where(mine, SessionMessage.run_id.in_(run_ids))
        .order_by(SessionMessage.id)
    )
    return list(rows)


async def delete_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(delete(SESSIONS).where(_this(session_id)))


async def list_page(
    session: AsyncSession,
    *,
    limit: int,
    before: tuple[datetime, str] | None,
    user_id: str | None = None,
    agent_id: str | None = None,
) -> list[Session]:
    """Newest first; `before` is the (created_at, id) of the last one seen."""
    statement = _visible(select(Session)).order_by(Session.created_at.desc(), Session.id.desc())
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
        select(Run.id)
        .where(Run.tenant_id == principal.tenant(), Run.session_id == session_id)
        .order_by(Run.id)
    )
    return list(rows)


async def messages(session: AsyncSession, session_id: str) -> list[dict[str, Any]]:
    """Every message of the session's completed runs, in order."""
    rows = await session.scalars(
        select(SessionMessage.message)
        .where(
            SessionMessage.tenant_id == principal.tenant(),
            SessionMessage.session_id == session_id,
        )
        .order_by(SessionMessage.id)
    )
    return list(rows)


async def active_run_in(session: AsyncSession, session_id: str) -> str | None:
    """A queued or running run of the session, if any (it may not hold the session yet)."""
    return await session.scalar(
        select(Run.id).where(
            Run.tenant_id == principal.tenant(),
            Run.session_id == session_id,
            Run.status.in_(ACTIVE_STATUSES),
        )
    )
