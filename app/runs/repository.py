"""Database access for runs, their events and the sessions they hold. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db import DriverStatement, utcnow
from app.tables import Agent, Run, RunEvent, Session, SessionMessage

ACTIVE_STATUSES = ("queued", "running")
# Core statements run on an ORM session or straight on a connection.
Db = AsyncSession | AsyncConnection


async def get(session: AsyncSession, run_id: str) -> Run | None:
    return await session.get(Run, run_id, populate_existing=True)


async def list_page(
    session: AsyncSession,
    *,
    limit: int,
    before: str | None,
    agent_id: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    status: str | None = None,
) -> list[Run]:
    """Newest first (run ids sort by creation time)."""
    statement = select(Run).order_by(Run.id.desc()).limit(limit)
    if before is not None:
        statement = statement.where(Run.id < before)
    for column, value in (
        (Run.agent_id, agent_id),
        (Run.session_id, session_id),
        (Run.user_id, user_id),
        (Run.status, status),
    ):
        if value is not None:
            statement = statement.where(column == value)
    return list(await session.scalars(statement))


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


# Hot paths below use Core statements on the tables (not ORM-enabled DML): they
# run several times per run and the ORM layer would cost more than the query.
RUNS = cast(Table, Run.__table__)
EVENTS = cast(Table, RunEvent.__table__)
SESSIONS = cast(Table, Session.__table__)
MESSAGES = cast(Table, SessionMessage.__table__)
AGENTS = cast(Table, Agent.__table__)


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


_INSERT_RUN = insert(RUNS)


async def insert_run(session: Db, values: dict[str, Any]) -> None:
    """`values` by attribute name (`metadata_` is the `metadata` column)."""
    row = dict(values)
    row["metadata"] = row.pop("metadata_", {})
    await session.execute(_INSERT_RUN, row)


# Sessions -----------------------------------------------------------------


_CREATE_SESSION = {
    name: dialect_insert(SESSIONS).on_conflict_do_nothing(index_elements=["id"])
    for name, dialect_insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))
}


async def create_session(session: Db, values: dict[str, Any]) -> bool:
    """Insert a session unless one with that id exists; True when this call created it."""
    bind = session.get_bind() if isinstance(session, AsyncSession) else session
    result = await session.execute(_CREATE_SESSION[bind.dialect.name], values)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _agent_unchanged() -> Any:
    """The agent `a_id` is still at version `a_version`, written at `a_updated_at`."""
    return (
        select(AGENTS.c.id)
        .where(
            AGENTS.c.id == bindparam("a_id"),
            AGENTS.c.version == bindparam("a_version"),
            AGENTS.c.updated_at == bindparam("a_updated_at", type_=AGENTS.c.updated_at.type),
        )
        .exists()
    )


# The columns a new run and its session are stored with (the rest start NULL;
# the optional ones here are NULL for a queued run).
NEW_SESSION_COLUMNS = (
    "id",
    "user_id",
    "agent_id",
    "state",
    "active_run_id",
    "created_at",
    "updated_at",
)
NEW_RUN_COLUMNS = (
    *("id", "agent_id", "agent_version", "session_id", "user_id", "status", "model", "input"),
    *("request", "metadata", "content_type", "last_seq", "cancel_requested", "attempt"),
    *("created_at", "updated_at", "started_at", "lease_owner", "lease_expires_at"),
)


@dataclass(slots=True)
class NewRun:
    """A run being created, as the request and the worker that starts it read it.
    Not an ORM `Run`: building and changing an instrumented instance was a few
    percent of a run's CPU, and this one is only ever INSERTed, from its values."""

    id: str
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
    def of(cls, values: dict[str, Any]) -> NewRun:
        """The record of a run's column values (the keys of `NEW_RUN_COLUMNS`,
        with `metadata_`)."""
        return cls(**{name: values[name] for name in cls.__slots__})


def _params(table: Table, columns: Sequence[str], prefix: str) -> list[Any]:
    return [bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in columns]


class _HoldAndInsert:
    """The statements of `hold_session_and_insert_run`, per dialect."""

    def __init__(self) -> None:
        agent_ok = _agent_unchanged()
        new_session = select(*_params(SESSIONS, NEW_SESSION_COLUMNS, "s_")).where(agent_ok)
        free = (
            update(SESSIONS)
            .where(
                SESSIONS.c.id == bindparam("s_id"),
                SESSIONS.c.active_run_id.is_(None),
                agent_ok,
            )
            .values(
                active_run_id=bindparam("s_active_run_id"),
                updated_at=bindparam("s_updated_at", type_=SESSIONS.c.updated_at.type),
            )
        )
        # PostgreSQL: one statement. Both parts see the same snapshot, so at most
        # one returns the session: created, or taken while free. The run is
        # inserted from that row. It always answers one row, (runs stored,
        # sessions created), so a pipeline of them answers a row per run.
        created = (
            postgresql_insert(SESSIONS)
            .from_select(NEW_SESSION_COLUMNS, new_session)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(SESSIONS.c.id)
            .cte("created")
        )
        taken = free.returning(SESSIONS.c.id).cte("taken")
        held = union_all(select(created.c.id), select(taken.c.id)).subquery("held")
        inserted = (
            insert(RUNS)
            .from_select(
                NEW_RUN_COLUMNS, select(*_params(RUNS, NEW_RUN_COLUMNS, "r_")).select_from(held)
            )
            .returning(RUNS.c.id)
            .cte("inserted")
        )
        self.postgresql = DriverStatement(
            select(
                select(func.count()).select_from(inserted).scalar_subquery(),
                select(func.count()).select_from(created).scalar_subquery(),
            )
        )
        # SQLite has no data-modifying CTEs: up to three statements, in a
        # transaction that holds the write lock from its start.
        self.sqlite_create = (
            sqlite_insert(SESSIONS)
            .from_select(NEW_SESSION_COLUMNS, new_session)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        self.sqlite_take = free
        self.insert_run = insert(RUNS)


_HOLD_AND_INSERT = _HoldAndInsert()


HOLD_AND_INSERT = _HOLD_AND_INSERT.postgresql


def hold_and_insert_params(
    session_values: dict[str, Any],
    run_values: dict[str, Any],
    *,
    agent_version: int,
    agent_updated_at: datetime,
) -> dict[str, Any]:
    """The parameters of `HOLD_AND_INSERT` (and of the SQLite statements)."""
    run = dict(run_values)
    run["metadata"] = run.pop("metadata_", {})
    return {
        "a_id": run["agent_id"],
        "a_version": agent_version,
        "a_updated_at": agent_updated_at,
        **{f"s_{name}": session_values[name] for name in NEW_SESSION_COLUMNS},
        **{f"r_{name}": run.get(name) for name in NEW_RUN_COLUMNS},
    }


def hold_and_insert_outcome(row: tuple[Any, ...] | None) -> bool | None:
    """A row of `HOLD_AND_INSERT`: whether the session was created, or None
    when nothing was stored."""
    if row is None or not row[0]:
        return None
    return bool(row[1])


async def hold_session_and_insert_run(
    db: AsyncConnection,
    session_values: dict[str, Any],
    run_values: dict[str, Any],
    *,
    agent_version: int,
    agent_updated_at: datetime,
) -> bool | None:
    """Store a run holding its session (created with `session_values`, or taken
    while it has no active run) in as few statements as the database allows,
    provided the agent is still at `agent_version` (written at
    `agent_updated_at`). Returns whether the session was created, or None
    when nothing was stored (the session is busy, or the agent changed): the
    caller then takes the general path."""
    params = hold_and_insert_params(
        session_values, run_values, agent_version=agent_version, agent_updated_at=agent_updated_at
    )
    return await hold_and_insert(db, params)


async def hold_and_insert(db: AsyncConnection, params: dict[str, Any]) -> bool | None:
    """`hold_session_and_insert_run` from its `hold_and_insert_params`."""
    if db.dialect.name == "postgresql":
        return hold_and_insert_outcome(await HOLD_AND_INSERT.first(db, params))
    statements = _HOLD_AND_INSERT
    created = bool((await db.execute(statements.sqlite_create, params)).rowcount)
    if not created and not (await db.execute(statements.sqlite_take, params)).rowcount:
        return None
    run = {name: params[f"r_{name}"] for name in NEW_RUN_COLUMNS}
    await db.execute(statements.insert_run, run)
    return created


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


async def acquire_session(session: Db, session_id: str, run_id: str) -> bool:
    """Make `run_id` the session's active run, unless another run holds it."""
    result = await session.execute(
        update(SESSIONS)
        .where(
            SESSIONS.c.id == session_id,
            or_(SESSIONS.c.active_run_id.is_(None), SESSIONS.c.active_run_id == run_id),
        )
        .values(active_run_id=run_id, updated_at=utcnow())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


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
    select(RUNS.c.id, RUNS.c.session_id)
    .join(SESSIONS, SESSIONS.c.id == RUNS.c.session_id)
    .where(
        RUNS.c.status == "queued",
        or_(SESSIONS.c.active_run_id.is_(None), SESSIONS.c.active_run_id == RUNS.c.id),
        ~select(_OLDER.c.id)
        .where(
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


async def claimable_queued(session: AsyncSession, limit: int) -> list[tuple[str, str]]:
    """Queued runs that may start now, oldest first, locked for this transaction
    (rows another claimer holds are skipped): the session is free or already
    theirs, and no older queued run of the same session waits before them."""
    rows = await session.execute(_CLAIMABLE, {"limit": limit})
    return [(run_id, session_id) for run_id, session_id in rows]


_ANY_QUEUED = select(RUNS.c.id).where(RUNS.c.status == "queued").limit(1)


async def any_queued(session: AsyncSession) -> bool:
    """Whether any run waits queued (claimable now or not)."""
    return (await session.execute(_ANY_QUEUED)).first() is not None


async def cancel_requested_among(session: AsyncSession, owner: str) -> list[str]:
    """Runs this worker owns whose cancel was requested (a missed notification)."""
    rows = await session.scalars(
        select(Run.id).where(Run.lease_owner == owner, Run.cancel_requested.is_(True))
    )
    return list(rows)


async def renew_leases(session: AsyncSession, owner: str, until: datetime) -> None:
    """Extend the leases of the runs `owner` executes. The rows are locked in id
    order, as the event writer locks them: two transactions taking the same rows
    in different orders would deadlock (PostgreSQL breaks that after a second)."""
    mine = (
        select(RUNS.c.id)
        .where(RUNS.c.lease_owner == owner, RUNS.c.status == "running")
        .order_by(RUNS.c.id)
        .with_for_update()
    )
    await session.execute(
        update(RUNS).where(RUNS.c.id.in_(mine.scalar_subquery())).values(lease_expires_at=until)
    )


def lease_until(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


async def delete_session(session: AsyncSession, session_id: str) -> None:
    await session.execute(delete(Session).where(Session.id == session_id))
