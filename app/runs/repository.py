"""Database access that only the runs domain needs: reading and listing runs
within the current principal's reach (its tenant, and its user when it has
one), storing a new run together with the session it holds, cancels that came
before their run, idempotency keys (both per tenant), and deleting a run.
Never commits. (What the worker reads and writes while it executes a run is in
`app.worker.store`, for any tenant.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app import principal
from app.db import DriverStatement, utcnow
from app.tables import Agent, IdempotencyKey, Run, RunCancel
from app.worker.store import ACTIVE_STATUSES, EVENTS, MESSAGES, RUNS, SESSIONS, Db


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
    statement = _visible(select(Run)).order_by(Run.id.desc()).limit(limit)
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


def _visible(statement: Any) -> Any:
    """`statement` limited to the runs the current principal may see."""
    return principal.within_reach(statement, Run.tenant_id, Run.user_id)


async def get_visible(session: AsyncSession, run_id: str) -> Run | None:
    """The run, if the current principal may see it."""
    statement = _visible(select(Run).where(Run.id == run_id))
    found: Run | None = await session.scalar(statement.execution_options(populate_existing=True))
    return found


async def lock_tenant(db: Db, tenant_id: str) -> None:
    """Serialize run creations of a tenant until the transaction ends (PostgreSQL;
    an SQLite write transaction excludes every other writer already)."""
    dialect = db.get_bind().dialect.name if isinstance(db, AsyncSession) else db.dialect.name
    if dialect == "postgresql":
        await db.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"agentd:{tenant_id}"}
        )


async def active_runs(db: Db, tenant_id: str) -> int:
    """The tenant's queued and running runs, on every replica."""
    counted = select(func.count()).where(
        RUNS.c.tenant_id == tenant_id, RUNS.c.status.in_(ACTIVE_STATUSES)
    )
    return int((await db.execute(counted)).scalar_one())


AGENTS = cast(Table, Agent.__table__)
CANCELS = cast(Table, RunCancel.__table__)
KEYS = cast(Table, IdempotencyKey.__table__)


async def delete_run(db: Db, run_id: str) -> None:
    """The run, if the current principal may see it, with its events, its
    messages in its session's history and the idempotency keys that answer with
    it (nothing of a run outside its reach)."""
    if (await db.execute(_visible(select(RUNS.c.id).where(RUNS.c.id == run_id)))).first() is None:
        return
    await db.execute(delete(EVENTS).where(EVENTS.c.run_id == run_id))
    await db.execute(delete(MESSAGES).where(MESSAGES.c.run_id == run_id))
    await db.execute(delete(KEYS).where(KEYS.c.run_id == run_id))
    await db.execute(delete(RUNS).where(RUNS.c.id == run_id))


async def run_exists(db: Db, run_id: str) -> bool:
    found = await db.execute(select(RUNS.c.id).where(RUNS.c.id == run_id))
    return found.first() is not None


_INSERT_RUN = insert(RUNS)


async def insert_run(session: Db, values: dict[str, Any]) -> None:
    """`values` by attribute name (`metadata_` is the `metadata` column)."""
    row = dict(values)
    row["metadata"] = row.pop("metadata_", {})
    await session.execute(_INSERT_RUN, row)


def _agent_unchanged() -> Any:
    """The agent `a_id` of tenant `s_tenant_id` is still at version `a_version`,
    written at `a_updated_at`."""
    return (
        select(AGENTS.c.id)
        .where(
            AGENTS.c.tenant_id == bindparam("s_tenant_id", type_=AGENTS.c.tenant_id.type),
            AGENTS.c.id == bindparam("a_id"),
            AGENTS.c.version == bindparam("a_version"),
            AGENTS.c.updated_at == bindparam("a_updated_at", type_=AGENTS.c.updated_at.type),
        )
        .exists()
    )


# The columns a new run and its session are stored with (the rest start NULL;
# the optional ones here are NULL for a queued run).
NEW_SESSION_COLUMNS = (
    "tenant_id",
    "id",
    "user_id",
    "agent_id",
    "state",
    "active_run_id",
    "created_at",
    "updated_at",
)
NEW_RUN_COLUMNS = (
    *("id", "tenant_id", "agent_id", "agent_version", "session_id", "user_id", "status"),
    *("model", "input"),
    *("request", "metadata", "content_type", "last_seq", "cancel_requested", "attempt"),
    *("created_at", "updated_at", "started_at", "lease_owner", "lease_expires_at"),
)


def _params(table: Table, columns: Sequence[str], prefix: str) -> list[Any]:
    return [bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in columns]


@dataclass(frozen=True, slots=True)
class Held:
    """A run stored holding its session."""

    created: bool  # the session was created (else taken while it was free)
    cancelled: bool = False  # a cancel for the run's client-chosen id came first


@dataclass(frozen=True, slots=True)
class IdTaken:
    """Nothing stored: a run has the client-chosen id already."""


ID_TAKEN = IdTaken()
# What storing a run holding its session did; None: nothing stored (the session
# is busy or another user's, or the agent changed).
Outcome = Held | IdTaken | None


def _new_session(guard: Any) -> Any:
    return select(*_params(SESSIONS, NEW_SESSION_COLUMNS, "s_")).where(guard)


def _take_free(guard: Any) -> Any:
    """The session `s_id` of tenant `s_tenant_id` taken while it is free; a
    user-bound principal (`s_owner`) takes only its own user's session."""
    owner = bindparam("s_owner", type_=SESSIONS.c.user_id.type)
    return (
        update(SESSIONS)
        .where(
            SESSIONS.c.tenant_id == bindparam("s_tenant_id", type_=SESSIONS.c.tenant_id.type),
            SESSIONS.c.id == bindparam("s_id"),
            SESSIONS.c.active_run_id.is_(None),
            or_(owner.is_(None), SESSIONS.c.user_id == owner),
            guard,
        )
        .values(
            active_run_id=bindparam("s_active_run_id"),
            updated_at=bindparam("s_updated_at", type_=SESSIONS.c.updated_at.type),
        )
    )


def _postgresql(*, chosen_id: bool) -> DriverStatement:
    """One statement. Both parts see the same snapshot, so at most one returns the
    session: created, or taken while free. The run is inserted from that row. It
    always answers one row, (runs stored, sessions created, id taken, cancelled),
    so a pipeline of them answers a row per run. With `chosen_id` nothing is
    stored when a run has the id (in any tenant: run ids are unique everywhere),
    and a cancel kept for it in the run's tenant is used up: the transaction
    locked the ids first (`lock_run_ids`, a statement of its own, so this one's
    snapshot sees a cancel stored under that lock)."""
    run_id = bindparam("r_id", type_=RUNS.c.id.type)
    id_taken = exists().where(RUNS.c.id == run_id)
    guard = _agent_unchanged()
    if chosen_id:
        guard = guard & ~id_taken
    created = (
        postgresql_insert(SESSIONS)
        .from_select(NEW_SESSION_COLUMNS, _new_session(guard))
        .on_conflict_do_nothing(index_elements=["tenant_id", "id"])
        .returning(SESSIONS.c.id)
        .cte("created")
    )
    taken = _take_free(guard).returning(SESSIONS.c.id).cte("taken")
    held = union_all(select(created.c.id), select(taken.c.id)).subquery("held")
    values = _params(RUNS, NEW_RUN_COLUMNS, "r_")
    cancelled: Any = literal_column("false")
    if chosen_id:
        tenant_id = bindparam("r_tenant_id", type_=RUNS.c.tenant_id.type)
        used_up = (
            delete(CANCELS)
            .where(
                CANCELS.c.tenant_id == tenant_id,
                CANCELS.c.run_id == run_id,
                exists(select(held.c.id)),
            )
            .returning(CANCELS.c.created_at)
            .cte("used_up")
        )
        since = bindparam("c_since", type_=CANCELS.c.created_at.type)
        cancelled = exists().where(used_up.c.created_at > since)
        at = NEW_RUN_COLUMNS.index("cancel_requested")
        values[at] = values[at] | cancelled
    inserted = (
        insert(RUNS)
        .from_select(NEW_RUN_COLUMNS, select(*values).select_from(held))
        .returning(RUNS.c.id)
        .cte("inserted")
    )
    return DriverStatement(
        select(
            select(func.count()).select_from(inserted).scalar_subquery(),
            select(func.count()).select_from(created).scalar_subquery(),
            id_taken if chosen_id else literal_column("false"),
            cancelled,
        )
    )


class _HoldAndInsert:
    """The statements of `hold_session_and_insert_run`, per dialect."""

    def __init__(self) -> None:
        self.postgresql = _postgresql(chosen_id=False)
        self.postgresql_chosen = _postgresql(chosen_id=True)
        # SQLite has no data-modifying CTEs: up to three statements, in a
        # transaction that holds the write lock from its start.
        self.sqlite_create = (
            sqlite_insert(SESSIONS)
            .from_select(NEW_SESSION_COLUMNS, _new_session(_agent_unchanged()))
            .on_conflict_do_nothing(index_elements=["tenant_id", "id"])
        )
        self.sqlite_take = _take_free(_agent_unchanged())
        self.insert_run = insert(RUNS)
        # With a client-chosen id, first: whether a run has the id (in any
        # tenant), and when a cancel for it was kept in the run's tenant.
        run_id = bindparam("r_id", type_=RUNS.c.id.type)
        kept_cancel = select(CANCELS.c.created_at).where(
            CANCELS.c.tenant_id == bindparam("r_tenant_id", type_=CANCELS.c.tenant_id.type),
            CANCELS.c.run_id == run_id,
        )
        self.sqlite_chosen = select(
            exists().where(RUNS.c.id == run_id), kept_cancel.scalar_subquery()
        )
        self.sqlite_use_cancel = delete(CANCELS).where(
            CANCELS.c.tenant_id == bindparam("r_tenant_id", type_=CANCELS.c.tenant_id.type),
            CANCELS.c.run_id == run_id,
        )


_HOLD_AND_INSERT = _HoldAndInsert()


def hold_and_insert_statement(*, chosen_id: bool) -> DriverStatement:
    """The PostgreSQL statement of `hold_and_insert`; with `chosen_id`, the one for
    runs of which some have a client-chosen id (the transaction locked them first)."""
    statements = _HOLD_AND_INSERT
    return statements.postgresql_chosen if chosen_id else statements.postgresql


def hold_and_insert_params(
    session_values: dict[str, Any],
    run_values: dict[str, Any],
    *,
    agent_version: int,
    agent_updated_at: datetime,
    owner: str | None,
) -> dict[str, Any]:
    """The parameters of the `hold_and_insert` statements; `owner` is the user of
    a user-bound principal, whose run takes only that user's session. Everything
    the statements need is here: they may run in a group with other principals'
    runs, so they read nothing from the principal in effect."""
    run = dict(run_values)
    run["metadata"] = run.pop("metadata_", {})
    return {
        "s_owner": owner,
        "a_id": run["agent_id"],
        "a_version": agent_version,
        "a_updated_at": agent_updated_at,
        "c_since": run["created_at"] - CANCEL_KEPT,
        **{f"s_{name}": session_values[name] for name in NEW_SESSION_COLUMNS},
        **{f"r_{name}": run.get(name) for name in NEW_RUN_COLUMNS},
    }


def hold_and_insert_outcome(row: tuple[Any, ...] | None) -> Outcome:
    """What a row of the PostgreSQL statements says was stored."""
    if row is None:
        return None
    inserted, created, id_taken, cancelled = row
    if id_taken:
        return ID_TAKEN
    return Held(bool(created), bool(cancelled)) if inserted else None


async def hold_session_and_insert_run(
    db: AsyncConnection,
    session_values: dict[str, Any],
    run_values: dict[str, Any],
    *,
    agent_version: int,
    agent_updated_at: datetime,
    chosen_id: bool = False,
    owner: str | None,
) -> Outcome:
    """Store a run holding its session (created with `session_values`, or taken
    while it has no active run) in as few statements as the database allows,
    provided the agent is still at `agent_version` (written at
    `agent_updated_at`). With `chosen_id` (the client chose the run's id),
    nothing is stored when a run has that id (`ID_TAKEN`), and a cancel kept
    for it is used up (`Held.cancelled`). None when nothing was stored (the
    session is busy or another user's, or the agent changed): the caller then
    takes the general path."""
    params = hold_and_insert_params(
        session_values,
        run_values,
        agent_version=agent_version,
        agent_updated_at=agent_updated_at,
        owner=owner,
    )
    return await hold_and_insert(db, params, chosen_id=chosen_id)


async def hold_and_insert(
    db: AsyncConnection, params: dict[str, Any], *, chosen_id: bool = False
) -> Outcome:
    """`hold_session_and_insert_run` from its `hold_and_insert_params`."""
    run_id = params["r_id"]
    if db.dialect.name == "postgresql":
        if chosen_id:
            await lock_run_ids(db, [run_id])
        statement = hold_and_insert_statement(chosen_id=chosen_id)
        return hold_and_insert_outcome(await statement.first(db, params))
    statements = _HOLD_AND_INSERT
    kept_cancel = None
    if chosen_id:
        taken, kept_cancel = (await db.execute(statements.sqlite_chosen, params)).one()
        if taken:
            return ID_TAKEN
    created = bool((await db.execute(statements.sqlite_create, params)).rowcount)
    if not created and not (await db.execute(statements.sqlite_take, params)).rowcount:
        return None
    run = {name: params[f"r_{name}"] for name in NEW_RUN_COLUMNS}
    cancelled = False
    if kept_cancel is not None:  # used up, however old
        await db.execute(statements.sqlite_use_cancel, params)
        cancelled = kept_cancel > params["c_since"]
    run["cancel_requested"] = run["cancel_requested"] or cancelled
    await db.execute(statements.insert_run, run)
    return Held(created, cancelled)


# Cancels of runs not created yet, and idempotency keys -----------------------

CANCEL_KEPT = timedelta(minutes=10)
IDEMPOTENCY_KEPT = timedelta(hours=24)


def _keep_cancel(dialect_insert: Any) -> Any:
    statement = dialect_insert(CANCELS)
    return statement.on_conflict_do_update(
        index_elements=["tenant_id", "run_id"], set_={"created_at": statement.excluded.created_at}
    )


_KEEP_CANCEL = {
    "postgresql": _keep_cancel(postgresql_insert),
    "sqlite": _keep_cancel(sqlite_insert),
}


async def keep_cancel(db: Db, run_id: str) -> None:
    """Remember a cancel for `run_id`, which no run has yet (see `take_cancel`): in
    the current tenant, for a run created there."""
    bind = db.get_bind() if isinstance(db, AsyncSession) else db
    values = {"tenant_id": principal.tenant(), "run_id": run_id, "created_at": utcnow()}
    await db.execute(_KEEP_CANCEL[bind.dialect.name], values)


async def take_cancel(db: Db, tenant_id: str, run_id: str, *, now: datetime | None = None) -> bool:
    """Whether a cancel for `run_id` arrived in `tenant_id` within CANCEL_KEPT of
    `now` (it is used up). The tenant is given, not read from the principal: a
    run being stored in a group is any tenant's."""
    table = CANCELS
    this = (table.c.tenant_id == tenant_id) & (table.c.run_id == run_id)
    found = (await db.execute(select(table.c.created_at).where(this))).first()
    if found is None:
        return False
    await db.execute(delete(table).where(this))
    return bool(found[0] > (now or utcnow()) - CANCEL_KEPT)


async def find_idempotency_key(db: Db, key: str) -> IdempotencyKey | None:
    """The request stored under `key` in the current tenant within IDEMPOTENCY_KEPT
    (an older one is dropped)."""
    table = KEYS
    this = (table.c.tenant_id == principal.tenant()) & (table.c.key == key)
    row = (await db.execute(select(table).where(this))).first()
    if row is None:
        return None
    if row.created_at <= utcnow() - IDEMPOTENCY_KEPT:
        await db.execute(delete(table).where(this))
        return None
    return IdempotencyKey(
        tenant_id=row.tenant_id,
        key=row.key,
        fingerprint=row.fingerprint,
        run_id=row.run_id,
        after_seq=row.after_seq,
        created_at=row.created_at,
    )


async def store_idempotency_key(
    db: Db, key: str, fingerprint: str, run_id: str, after_seq: int
) -> None:
    """Raises IntegrityError when another request stored the key first."""
    await db.execute(
        insert(KEYS).values(
            tenant_id=principal.tenant(),
            key=key,
            fingerprint=fingerprint,
            run_id=run_id,
            after_seq=after_seq,
            created_at=utcnow(),
        )
    )


async def lock_run_id(db: Db, run_id: str) -> None:
    """Serialize, until the transaction ends, what concerns a client-chosen run id
    that may not exist yet (its creation, a cancel that comes first). SQLite's
    write transactions are serial already."""
    await lock_run_ids(db, [run_id])


# Locks in one order (their keys sorted), so transactions that lock several at
# once never wait for each other in a circle.
_LOCK_RUN_IDS = text(
    "SELECT pg_advisory_xact_lock(key) FROM "
    "(SELECT DISTINCT hashtext(id) AS key FROM unnest(CAST(:ids AS text[])) AS id "
    "ORDER BY key) AS keys"
)


async def lock_run_ids(db: Db, run_ids: Sequence[str]) -> None:
    """`lock_run_id` for each of `run_ids`, in one statement."""
    bind = db.get_bind() if isinstance(db, AsyncSession) else db
    if bind.dialect.name != "postgresql":
        return
    if len(run_ids) == 1:
        await db.execute(select(func.pg_advisory_xact_lock(func.hashtext(run_ids[0]))))
    else:
        await db.execute(_LOCK_RUN_IDS, {"ids": list(run_ids)})
