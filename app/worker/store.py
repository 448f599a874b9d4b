"""What the worker persists about the runs it executes: the run rows (status
transitions, leases, claims, cancel requests), the session a run holds, and the
event log read back by followers. Never commits: callers own the transaction.

Domains use these too (a continue takes the run's session, a follower reads the
log); the SQL that only a domain needs lives in that domain's repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db import utcnow
from app.tables import Run, RunEvent, Session, SessionMessage

ACTIVE_STATUSES = ("queued", "running")
# Core statements run on an ORM session or straight on a connection.
Db = AsyncSession | AsyncConnection

# Hot paths use Core statements on the tables (not ORM-enabled DML): they run
# several times per run and the ORM layer would cost more than the query.
RUNS = cast(Table, Run.__table__)
EVENTS = cast(Table, RunEvent.__table__)
SESSIONS = cast(Table, Session.__table__)
MESSAGES = cast(Table, SessionMessage.__table__)


async def get(session: AsyncSession, run_id: str) -> Run | None:
    return await session.get(Run, run_id, populate_existing=True)


async def update_owned(
    session: Db,
    run_id: str,
    owner: str | None,
    values: dict[str, Any],
    statuses: Sequence[str] | None = None,
) -> bool:
    """Update a run only while `owner` holds it (None: no ownership check) and,
    with `statuses`, only while its status is one of them."""
    statement = update(RUNS).where(RUNS.c.id == run_id).values(**values)
    if owner is not None:
        statement = statement.where(RUNS.c.lease_owner == owner)
    if statuses is not None:
        statement = statement.where(RUNS.c.status.in_(statuses))
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def transition(
    session: AsyncSession, run_id: str, from_statuses: Sequence[str], values: dict[str, Any]
) -> bool:
    """Compare-and-set on status: True when this call made the change."""
    result = await session.execute(
        update(RUNS).where(RUNS.c.id == run_id, RUNS.c.status.in_(from_statuses)).values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def read_events(
    session: AsyncSession, run_id: str, after: int, limit: int = 1000
) -> Sequence[tuple[int, str, str]]:
    rows = await session.execute(
        select(RunEvent.seq, RunEvent.type, RunEvent.data)
        .where(RunEvent.run_id == run_id, RunEvent.seq > after)
        .order_by(RunEvent.seq)
        .limit(limit)
    )
    return [(seq, kind, data) for seq, kind, data in rows]


async def status_of(session: AsyncSession, run_id: str) -> tuple[str, int] | None:
    row = (await session.execute(select(Run.status, Run.last_seq).where(Run.id == run_id))).first()
    return (row[0], row[1]) if row is not None else None


async def acquire_session(session: Db, tenant_id: str, session_id: str, run_id: str) -> bool:
    """Make `run_id` the session's active run, unless another run holds it."""
    result = await session.execute(
        update(SESSIONS)
        .where(
            SESSIONS.c.tenant_id == tenant_id,
            SESSIONS.c.id == session_id,
            or_(SESSIONS.c.active_run_id.is_(None), SESSIONS.c.active_run_id == run_id),
        )
        .values(active_run_id=run_id, updated_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def stale_runs(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    """Running runs whose worker's lease ran out."""
    rows = await session.scalars(
        select(Run.id)
        .where(
            Run.status == "running", or_(Run.lease_expires_at.is_(None), Run.lease_expires_at < now)
        )
        .order_by(Run.id)
        .limit(limit)
    )
    return list(rows)


async def take_over(session: AsyncSession, run_id: str, owner: str, until: datetime) -> bool:
    """Claim a running run whose lease ran out (compare-and-set on the lease)."""
    now = utcnow()
    result = await session.execute(
        update(Run)
        .where(
            Run.id == run_id,
            Run.status == "running",
            or_(Run.lease_expires_at.is_(None), Run.lease_expires_at < now),
        )
        .values(lease_owner=owner, lease_expires_at=until, attempt=Run.attempt + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


_OLDER = RUNS.alias("older_run")


_CLAIMABLE = (
    select(RUNS.c.id, RUNS.c.tenant_id, RUNS.c.session_id)
    .join(
        SESSIONS,
        (SESSIONS.c.tenant_id == RUNS.c.tenant_id) & (SESSIONS.c.id == RUNS.c.session_id),
    )
    .where(
        RUNS.c.status == "queued",
        or_(SESSIONS.c.active_run_id.is_(None), SESSIONS.c.active_run_id == RUNS.c.id),
        ~select(_OLDER.c.id)
        .where(
            _OLDER.c.tenant_id == RUNS.c.tenant_id,
            _OLDER.c.session_id == RUNS.c.session_id,
            _OLDER.c.status == "queued",
            _OLDER.c.id < RUNS.c.id,
        )
        .exists(),
    )
    .order_by(RUNS.c.id)
    .limit(bindparam("limit"))
    .with_for_update(of=RUNS, skip_locked=True)
)


async def claimable_queued(session: AsyncSession, limit: int) -> list[tuple[str, str, str]]:
    """Queued runs that may start now, oldest first, locked for this transaction
    (rows another claimer holds are skipped): the session is free or already
    theirs, and no older queued run of the same session waits before them."""
    rows = await session.execute(_CLAIMABLE, {"limit": limit})
    return [(run_id, tenant_id, session_id) for run_id, tenant_id, session_id in rows]


_ANY_QUEUED = select(RUNS.c.id).where(RUNS.c.status == "queued").limit(1)


async def any_queued(session: AsyncSession) -> bool:
    """Whether any run waits queued (claimable now or not)."""
    return (await session.execute(_ANY_QUEUED)).first() is not None


# Written into the SQL, not bound: a plan made for any status could not use the
# partial index of the running runs (ix_runs_lease_owner_running).
RUNNING = RUNS.c.status == literal_column("'running'")


async def cancel_requested_among(session: AsyncSession, owner: str) -> list[str]:
    """Running runs this worker owns whose cancel was requested (a missed notification)."""
    rows = await session.scalars(
        select(Run.id).where(Run.lease_owner == owner, RUNNING, Run.cancel_requested.is_(True))
    )
    return list(rows)


async def renew_leases(session: AsyncSession, owner: str, until: datetime) -> None:
    """Extend the leases of the runs `owner` executes. The rows are locked in id
    order, as the event writer locks them: two transactions taking the same rows
    in different orders would deadlock (PostgreSQL breaks that after a second)."""
    mine = (
        select(RUNS.c.id)
        .where(RUNS.c.lease_owner == owner, RUNNING)
        .order_by(RUNS.c.id)
        .with_for_update()
    )
    await session.execute(
        update(RUNS).where(RUNS.c.id.in_(mine.scalar_subquery())).values(lease_expires_at=until)
    )


def lease_until(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


@dataclass(slots=True)
class NewRun:
    """A run being created, as the request and the worker that starts it read it.
    Not an ORM `Run`: building and changing an instrumented instance was a few
    percent of a run's CPU, and this one is only ever INSERTed, from its values."""

    id: str
    tenant_id: str
    agent_id: str
    session_id: str
    user_id: str | None
    input: dict[str, Any]
    request: dict[str, Any]
    metadata_: dict[str, Any]
    created_at: datetime
    last_seq: int = 0
    cancel_requested: bool = False

    @classmethod
    def of_run(cls, run: Run) -> NewRun:
        """The record of a stored run."""
        return cls(
            id=run.id,
            tenant_id=run.tenant_id,
            agent_id=run.agent_id,
            session_id=run.session_id,
            user_id=run.user_id,
            input=run.input,
            request=run.request,
            metadata_=run.metadata_,
            created_at=run.created_at,
            last_seq=run.last_seq,
            cancel_requested=run.cancel_requested,
        )

    @classmethod
    def of(cls, values: dict[str, Any]) -> NewRun:
        """The record of a run's column values (the keys of `NEW_RUN_COLUMNS`,
        with `metadata_`)."""
        return cls(**{name: values[name] for name in cls.__slots__})
