"""Group commit: every run's pending batch goes out in one transaction per turn.

A recorder hands its batch (event rows, run-row values, session release) to
the process's `EventWriter` and waits. While transactions are being written (at
most `in_flight` at once: one can be built while another waits for its commit),
new batches queue up; the next transaction takes all of them, so under load one
commit carries many runs' events for the price of one, and statements are
shared (one INSERT for every run's events, one UPDATE per shape of run-row
change). An idle writer starts at once: a lone run waits for nothing. A run's
batches are written one transaction after the other, in the order they came.
On PostgreSQL the statements after the ownership check go to the asyncpg
connection itself (`DriverStatement`): the same SQL and values, without
SQLAlchemy's per-execution work; a batch that fails there alone is written
again through SQLAlchemy, whose exceptions the recorders act on.

Ownership is checked for every run of the group first, with the rows locked in
id order (`FOR UPDATE`; SQLite's `BEGIN IMMEDIATE` already excludes other
writers): a run this process no longer owns, or whose status moved on, gets
`LeaseLost` and nothing of it is written; the others go on. Should the group's
transaction fail for another reason (a constraint, a deadlock), each batch is
written again alone, so one bad batch never fails another run. A pool timeout
or a lost database fails the whole group: the recorders keep their events and
try again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Text,
    any_,
    bindparam,
    case,
    insert,
    null,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection

from app.compat.sqlalchemy import direct_driver
from app.db import DriverStatement, utcnow
from app.worker.store import EVENTS, MESSAGES, RUNS, SESSIONS

log = logging.getLogger("agentd.worker")

Begin = Callable[[], AbstractAsyncContextManager[AsyncConnection]]

MAX_GROUP = 256  # batches per transaction
IN_FLIGHT = 2  # transactions at once: one is written while the other commits


class LeaseLost(Exception):
    """The run is no longer this writer's (another worker owns it, or its status
    moved on): nothing was written."""


@dataclass(slots=True, eq=False)
class Release:
    """A run lets go of its session: the session's `active_run_id` is cleared if it
    is the run's, its state replaced by `state` (None: kept), and `messages`
    appended to its history."""

    tenant_id: str
    session_id: str
    state: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Batch:
    """One run's write: `rows` for `run_events` (without `run_id`), the run row's
    new `values`, and maybe the release of its session; done only while `owner`
    (None: anyone) holds the run and its status is one of `statuses` (None: any)."""

    run_id: str
    owner: str | None
    statuses: tuple[str, ...] | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    release: Release | None = None


Pending = tuple[Batch, "asyncio.Future[None]"]

_OWNED = select(RUNS.c.id, RUNS.c.lease_owner, RUNS.c.status).order_by(RUNS.c.id).with_for_update()
# One SQL text whatever the number of runs (`= ANY($1)`) on PostgreSQL, so the
# driver's prepared statement is reused; SQLite expands `IN (...)`.
_OWNERSHIP = {
    "postgresql": _OWNED.where(RUNS.c.id == any_(bindparam("ids", type_=ARRAY(String)))),
    "sqlite": _OWNED.where(RUNS.c.id.in_(bindparam("ids", expanding=True))),
}
# On PostgreSQL the group's events go in as five arrays, one statement with one
# set of parameters whatever the number of rows: no per-row parameter handling
# in Python and one execution on the server (an executemany sends one per row).
_INSERT_EVENTS_UNNEST = DriverStatement(
    text(
        "INSERT INTO run_events (run_id, seq, type, data, created_at) "
        "SELECT * FROM unnest(:run_id, :seq, :type, :data, :created_at)"
    ).bindparams(
        bindparam("run_id", type_=ARRAY(String)),
        bindparam("seq", type_=ARRAY(Integer)),
        bindparam("type", type_=ARRAY(String)),
        bindparam("data", type_=ARRAY(Text)),
        bindparam("created_at", type_=ARRAY(DateTime(timezone=True))),
    )
)
_INSERT_EVENTS = DriverStatement(insert(EVENTS))
_MESSAGE_COLUMNS = ("tenant_id", "session_id", "run_id", "position", "message", "created_at")
_INSERT_MESSAGES = DriverStatement(
    insert(MESSAGES).values(
        {name: bindparam(name, type_=MESSAGES.c[name].type) for name in _MESSAGE_COLUMNS}
    )
)
_RELEASE_VALUES = {
    "active_run_id": case(
        (SESSIONS.c.active_run_id == bindparam("s_run", type_=String), null()),
        else_=SESSIONS.c.active_run_id,
    ),
    "updated_at": bindparam("s_now", type_=SESSIONS.c.updated_at.type),
}
_RELEASED_SESSION = (
    SESSIONS.c.tenant_id == bindparam("s_tenant"),
    SESSIONS.c.id == bindparam("s_id"),
)
_RELEASE = DriverStatement(update(SESSIONS).where(*_RELEASED_SESSION).values(_RELEASE_VALUES))
_RELEASE_WITH_STATE = DriverStatement(
    update(SESSIONS)
    .where(*_RELEASED_SESSION)
    .values({**_RELEASE_VALUES, "state": bindparam("s_state", type_=SESSIONS.c.state.type)})
)

# Runs one statement of a group's transaction, once per parameter set.
Execute = Callable[[DriverStatement, list[dict[str, Any]]], Awaitable[None]]


class _DirectFailed(Exception):
    """A statement sent on the driver connection failed: the transaction is rolled
    back, to be written again through SQLAlchemy."""


class EventWriter:
    def __init__(
        self, begin: Begin, *, max_group: int = MAX_GROUP, in_flight: int = IN_FLIGHT
    ) -> None:
        self._begin = begin
        self._max_group = max_group
        self._in_flight = in_flight
        self._drains: set[asyncio.Task[None]] = set()
        self._writing: set[str] = set()  # runs with a batch in a transaction now
        self._queue: list[Pending] = []
        self._updates: dict[tuple[str, ...], DriverStatement] = {}

    async def write(self, batch: Batch) -> None:
        """Write `batch` with whatever else is waiting; raises `LeaseLost`, or the
        database's error (nothing of the batch was stored then)."""
        await self.submit(batch)

    def submit(self, batch: Batch) -> asyncio.Future[None]:
        """Queue `batch`; the future ends as `write` would (no task needed to wait)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((batch, future))
        if len(self._drains) < self._in_flight:
            drain = asyncio.create_task(self._drain())
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        return future

    async def _drain(self) -> None:
        while self._queue:
            group = self._take()
            if not group:
                return  # what waits belongs to runs another transaction is writing
            runs = {batch.run_id for batch, _ in group}
            self._writing |= runs
            try:
                await self._write_group(group)
            except Exception as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
            except BaseException:
                for _, future in group + self._queue:
                    future.cancel()
                self._queue.clear()
                raise
            finally:
                self._writing -= runs

    def _take(self) -> list[Pending]:
        """The next group: up to `max_group` batches, one per run and none of a run
        another transaction is writing (a run's batches commit in order), skipping
        those whose writer gave up."""
        group: list[Pending] = []
        runs: set[str] = set()
        rest: list[Pending] = []
        for pending in self._queue:
            batch, future = pending
            if future.done():
                continue
            if (
                len(group) < self._max_group
                and batch.run_id not in runs
                and batch.run_id not in self._writing
            ):
                group.append(pending)
                runs.add(batch.run_id)
            else:
                rest.append(pending)
        self._queue = rest
        return group

    async def _write_group(self, group: list[Pending]) -> None:
        batches = [batch for batch, _ in group]
        try:
            try:
                lost = await self._store(batches, direct=True)
            except _DirectFailed:
                if len(group) > 1:
                    raise
                # Nothing of it is stored: once more through SQLAlchemy, whose exceptions
                # the callers act on (IntegrityError: another writer owns the run).
                lost = await self._store(batches, direct=False)
        except PoolTimeout:
            raise  # every batch would wait the same: fail them all, to be retried
        except Exception:
            if len(group) == 1:
                raise
            log.warning("a grouped event write failed; writing its %d runs one by one", len(group))
            for pending in group:
                try:
                    await self._write_group([pending])
                except Exception as exc:
                    if not pending[1].done():
                        pending[1].set_exception(exc)
            return
        for batch, future in group:
            if not future.done():
                if batch.run_id in lost:
                    future.set_exception(LeaseLost(batch.run_id))
                else:
                    future.set_result(None)

    async def _store(self, batches: list[Batch], *, direct: bool) -> set[str]:
        """One transaction for `batches`; the ids of runs not written (lease lost).
        The runs are locked and checked, then the batches of those still owned
        written: with `direct`, on PostgreSQL, through the asyncpg connection
        itself, each statement without SQLAlchemy's per-execution work (see
        `DriverStatement`); should one fail, `_DirectFailed`."""
        async with self._begin() as conn:
            found = {
                run_id: (owner, status)
                for run_id, owner, status in await conn.execute(
                    _OWNERSHIP[conn.dialect.name], {"ids": [batch.run_id for batch in batches]}
                )
            }
            lost: set[str] = set()
            kept: list[Batch] = []
            for batch in batches:
                row = found.get(batch.run_id)
                if (
                    row is None
                    or (batch.owner is not None and row[0] != batch.owner)
                    or (batch.statuses is not None and row[1] not in batch.statuses)
                ):
                    lost.add(batch.run_id)
                else:
                    kept.append(batch)
            # The ownership query began the transaction on the driver connection too.
            driver = await direct_driver(conn) if direct else None
            if driver is None:
                await self._write(_through(conn), conn.dialect.name, kept)
            else:
                try:
                    await self._write(_on_driver(driver, conn.dialect), conn.dialect.name, kept)
                except Exception as exc:
                    raise _DirectFailed from exc
        return lost

    async def _write(self, execute: Execute, dialect: str, batches: list[Batch]) -> None:
        if any(batch.rows for batch in batches):
            await execute(*_insert_events(dialect, batches))
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for batch in batches:
            if batch.values:
                params = {f"v_{name}": value for name, value in batch.values.items()}
                params["v_id_"] = batch.run_id
                shapes.setdefault(tuple(batch.values), []).append(params)
        for shape, params_list in shapes.items():
            await execute(self._update(shape), params_list)
        await self._release(execute, batches)

    @staticmethod
    async def _release(execute: Execute, batches: list[Batch]) -> None:
        """Sessions released by `batches`: history appended, then the sessions
        updated (in id order), with one statement per kind for all of them."""
        releases = [(batch.run_id, batch.release) for batch in batches if batch.release]
        if not releases:
            return
        now = utcnow()
        messages = [
            {
                "tenant_id": release.tenant_id,
                "session_id": release.session_id,
                "run_id": run_id,
                "position": position,
                "message": message,
                "created_at": now,
            }
            for run_id, release in releases
            for position, message in enumerate(release.messages)
        ]
        if messages:
            await execute(_INSERT_MESSAGES, messages)
        keep: list[dict[str, Any]] = []
        replace: list[dict[str, Any]] = []
        ordered = sorted(releases, key=lambda item: (item[1].tenant_id, item[1].session_id))
        for run_id, release in ordered:
            params = {
                "s_tenant": release.tenant_id,
                "s_id": release.session_id,
                "s_run": run_id,
                "s_now": now,
            }
            if release.state is None:
                keep.append(params)
            else:
                replace.append({**params, "s_state": release.state})
        if keep:
            await execute(_RELEASE, keep)
        if replace:
            await execute(_RELEASE_WITH_STATE, replace)

    def _update(self, shape: tuple[str, ...]) -> DriverStatement:
        """`UPDATE runs SET <shape> WHERE id = ?`, built once per shape (executemany)."""
        statement = self._updates.get(shape)
        if statement is None:
            statement = DriverStatement(
                update(RUNS)
                .where(RUNS.c.id == bindparam("v_id_"))
                .values({name: bindparam(f"v_{name}", type_=RUNS.c[name].type) for name in shape})
            )
            self._updates[shape] = statement
        return statement


def _through(conn: AsyncConnection) -> Execute:
    async def execute(statement: DriverStatement, params: list[dict[str, Any]]) -> None:
        await conn.execute(statement.statement, params)

    return execute


def _on_driver(driver: Any, dialect: Dialect) -> Execute:
    async def execute(statement: DriverStatement, params: list[dict[str, Any]]) -> None:
        await statement.executemany(driver, dialect, params)

    return execute


def _insert_events(
    dialect: str, batches: list[Batch]
) -> tuple[DriverStatement, list[dict[str, Any]]]:
    """The statement and parameters that store the event rows of `batches`."""
    if dialect == "postgresql":
        run_ids: list[str] = []
        seqs: list[int] = []
        types: list[str] = []
        datas: list[str] = []
        times: list[Any] = []
        for batch in batches:
            for row in batch.rows:
                run_ids.append(batch.run_id)
                seqs.append(row["seq"])
                types.append(row["type"])
                datas.append(row["data"])
                times.append(row["created_at"])
        arrays = {"run_id": run_ids, "seq": seqs, "type": types, "data": datas, "created_at": times}
        return _INSERT_EVENTS_UNNEST, [arrays]
    rows = [{"run_id": batch.run_id, **row} for batch in batches for row in batch.rows]
    return _INSERT_EVENTS, rows
