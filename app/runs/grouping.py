"""Group creation of runs: the runs that requests create at the same moment are
stored in one transaction, with one commit.

The common creation (a run of the agent version this process read last, in a
new session or a free one) is one statement per run on PostgreSQL, up to three
on SQLite (`repository.hold_session_and_insert_run`). Sent one request at a
time, each pays a pooled connection and a commit of its own, and the database
a transaction each (on SQLite, the WAL frames of the same pages written again
for every run). Here a request hands its run to the process's `RunCreations`
and waits: when no write is under way its run goes at once (nothing waits for
company), otherwise with every run that arrived meanwhile. On PostgreSQL the
group is one pipelined `fetchmany` on one connection: asyncpg sends the
executions with a single Sync, so PostgreSQL runs them in one implicit
transaction; on SQLite (or where statement listeners must see every
statement) the runs' statements follow each other in one transaction. Either
way each run sees the ones before it (two runs of one session: the second
finds the session held and is not stored), and they commit together or not at
all.

A run with a client-chosen id is stored this way too: a group holding such
runs first locks their ids (the lock a cancel for an id that has no run yet
takes), in a statement of its own, and their statement checks that the id is
free and uses up a cancel kept for it.

Every run learns its own outcome: stored (in a session created or taken,
cancelled at once if a cancel came first), or not stored (the session busy, the
agent changed: that request then takes the general path, as it would have after
its own statement; or its id taken: the request is answered from that run). Should the group fail
as a whole (a deadlock with another replica, a bad value), each run is stored
again on its own, so one run's failure is only that run's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.compat.sqlalchemy import direct_driver
from app.runs import repository
from app.runs.repository import Outcome

log = logging.getLogger("agentd.runs")

MAX_GROUP = 256  # runs per group at most


@dataclass(slots=True)
class _Pending:
    params: dict[str, Any]
    chosen_id: bool  # the client chose the run's id
    done: asyncio.Future[Outcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class RunCreations:
    """Stores new runs holding their sessions, grouped per transaction."""

    def __init__(self, connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]]) -> None:
        self._connect = connect
        self._pending: list[_Pending] = []
        self._writing: asyncio.Task[None] | None = None
        self.groups = 0  # groups stored together so far

    async def hold_session_and_insert_run(
        self,
        session_values: dict[str, Any],
        run_values: dict[str, Any],
        *,
        agent_version: int,
        agent_updated_at: datetime,
        chosen_id: bool = False,
        owner: str | None,
    ) -> Outcome:
        """What `repository.hold_session_and_insert_run` answers, for this run,
        stored with the runs created at the same moment."""
        pending = _Pending(
            repository.hold_and_insert_params(
                session_values,
                run_values,
                agent_version=agent_version,
                agent_updated_at=agent_updated_at,
                owner=owner,
            ),
            chosen_id,
        )
        self._pending.append(pending)
        if self._writing is None:
            self._writing = asyncio.get_running_loop().create_task(self._write())
        # A request cancelled meanwhile cancels its own wait, not the group's write.
        return await pending.done

    async def _write(self) -> None:
        group: list[_Pending] = []
        try:
            while self._pending:
                group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
                try:
                    outcomes = await self._store(group)
                except Exception as exc:
                    log.debug("grouped run creation failed; storing each alone", exc_info=True)
                    await self._store_each(group, exc)
                else:
                    for pending, outcome in zip(group, outcomes, strict=True):
                        _settle(pending, outcome)
                group = []
        except BaseException as exc:  # cancelled (shutdown): nobody is left waiting
            for pending in [*group, *self._pending]:
                _fail(pending, exc)
            self._pending = []
            raise
        finally:
            self._writing = None

    async def _store(self, group: list[_Pending]) -> list[Outcome]:
        async with self._connect() as conn:
            driver = await direct_driver(conn)
            if driver is None or len(group) == 1:
                # One run after another (SQLite; or statements that listeners must
                # see), in one transaction: one commit.
                outcomes = [
                    await repository.hold_and_insert(conn, p.params, chosen_id=p.chosen_id)
                    for p in group
                ]
                await conn.commit()
            else:
                chosen = [p.params["r_id"] for p in group if p.chosen_id]
                if chosen:
                    # Begins the transaction, on the driver connection too.
                    await repository.lock_run_ids(conn, chosen)
                statement = repository.hold_and_insert_statement(chosen_id=bool(chosen))
                sql, first = statement.bind(conn.dialect, group[0].params)
                args = [first, *(statement.bind(conn.dialect, p.params)[1] for p in group[1:])]
                rows = await driver.fetchmany(sql, args)
                outcomes = [repository.hold_and_insert_outcome(tuple(row)) for row in rows]
                if chosen:
                    await conn.commit()
        self.groups += 1
        return outcomes

    async def _store_each(self, group: list[_Pending], failure: Exception) -> None:
        for pending in group:
            try:
                async with self._connect() as conn:
                    outcome = await repository.hold_and_insert(
                        conn, pending.params, chosen_id=pending.chosen_id
                    )
                    await conn.commit()
            except Exception as exc:
                exc.__context__ = failure
                _fail(pending, exc)
            else:
                _settle(pending, outcome)


def _settle(pending: _Pending, outcome: Outcome) -> None:
    if not pending.done.done():
        pending.done.set_result(outcome)


def _fail(pending: _Pending, exc: BaseException) -> None:
    if not pending.done.done():
        pending.done.set_exception(exc)
