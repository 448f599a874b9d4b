"""The event writer commits many runs' batches in one transaction, and keeps one
run's trouble (a lost lease, a constraint) from failing the others."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import utcnow
from app.principal import DEFAULT_TENANT
from app.sessions import repository as sessions
from app.tables import Run, RunEvent
from app.tables import Session as SessionRow
from app.worker import store
from app.worker.writer import Batch, EventWriter, LeaseLost, Release
from tests.worker.helpers import CountingBegin, store_runs


async def make_runs(
    maker: async_sessionmaker[AsyncSession], count: int, owner: str = "me"
) -> list[str]:
    ids = [f"r{index}" for index in range(count)]
    await store_runs(maker, {run_id: f"s-{run_id}" for run_id in ids}, owner)
    return ids


def batch(run_id: str, seqs: range, *, owner: str | None = "me", **values: Any) -> Batch:
    now = utcnow()
    return Batch(
        run_id=run_id,
        owner=owner,
        statuses=("running",),
        rows=[
            {"seq": seq, "type": "RunContent", "data": f'{{"seq":{seq}}}', "created_at": now}
            for seq in seqs
        ],
        values={"last_seq": seqs[-1], "updated_at": now, **values},
    )


async def stored(maker: async_sessionmaker[AsyncSession]) -> dict[str, tuple[int, list[int]]]:
    """run id -> (last_seq, stored seqs)."""
    async with maker() as session:
        runs = dict((await session.execute(select(Run.id, Run.last_seq))).all())
        events = (await session.execute(select(RunEvent.run_id, RunEvent.seq))).all()
    return {
        run_id: (last_seq, sorted(seq for rid, seq in events if rid == run_id))
        for run_id, last_seq in runs.items()
    }


async def test_concurrent_batches_share_one_transaction(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ids = await make_runs(db_sessionmaker, 12)
    begin = CountingBegin(db_engine)
    writer = EventWriter(begin)
    await asyncio.gather(*(writer.write(batch(run_id, range(1, 4))) for run_id in ids))
    assert begin.transactions == 1
    assert await stored(db_sessionmaker) == {run_id: (3, [1, 2, 3]) for run_id in ids}
    # A lone write goes out at once, in its own transaction.
    await writer.write(batch(ids[0], range(4, 5), status="completed"))
    assert begin.transactions == 2
    async with db_sessionmaker() as session:
        assert await store.status_of(session, ids[0]) == ("completed", 4)


async def test_a_groups_events_are_one_insert(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ids = await make_runs(db_sessionmaker, 12)
    inserts: list[tuple[str, bool]] = []

    def seen(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.startswith("INSERT INTO run_events"):
            inserts.append((statement, many))

    event.listen(db_engine.sync_engine, "before_cursor_execute", seen)
    try:
        writer = EventWriter(CountingBegin(db_engine))
        await asyncio.gather(*(writer.write(batch(run_id, range(1, 4))) for run_id in ids))
    finally:
        event.remove(db_engine.sync_engine, "before_cursor_execute", seen)
    assert len(inserts) == 1
    if db_engine.dialect.name == "postgresql":  # one execution with arrays, not one per row
        assert "unnest" in inserts[0][0] and inserts[0][1] is False
    assert await stored(db_sessionmaker) == {run_id: (3, [1, 2, 3]) for run_id in ids}
    async with db_sessionmaker() as session:
        query = select(RunEvent.seq, RunEvent.data).filter_by(run_id="r5")
        data = dict((await session.execute(query)).all())
    assert data == {1: '{"seq":1}', 2: '{"seq":2}', 3: '{"seq":3}'}


async def test_one_runs_batches_go_out_in_order_in_separate_transactions(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [run_id] = await make_runs(db_sessionmaker, 1)
    begin = CountingBegin(db_engine)
    writer = EventWriter(begin)
    await asyncio.gather(
        writer.write(batch(run_id, range(1, 3))), writer.write(batch(run_id, range(3, 5)))
    )
    assert begin.transactions == 2
    assert await stored(db_sessionmaker) == {run_id: (4, [1, 2, 3, 4])}


async def test_a_lost_lease_fails_only_its_own_run(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ids = await make_runs(db_sessionmaker, 3)
    begin = CountingBegin(db_engine)
    writer = EventWriter(begin)
    results = await asyncio.gather(
        writer.write(batch(ids[0], range(1, 3))),
        writer.write(batch(ids[1], range(1, 3), owner="someone-else")),
        writer.write(batch(ids[2], range(1, 3))),
        return_exceptions=True,
    )
    assert [type(result) for result in results] == [type(None), LeaseLost, type(None)]
    assert begin.transactions == 1
    assert await stored(db_sessionmaker) == {
        ids[0]: (2, [1, 2]),
        ids[1]: (0, []),
        ids[2]: (2, [1, 2]),
    }


async def test_a_status_that_moved_on_is_a_lost_lease(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [run_id] = await make_runs(db_sessionmaker, 1)
    writer = EventWriter(db_engine.begin)
    await writer.write(batch(run_id, range(1, 2), status="cancelled"))
    with pytest.raises(LeaseLost):
        await writer.write(batch(run_id, range(2, 3)))
    assert await stored(db_sessionmaker) == {run_id: (1, [1])}


async def test_a_failing_batch_is_isolated_and_the_others_are_written(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ids = await make_runs(db_sessionmaker, 3)
    await EventWriter(db_engine.begin).write(batch(ids[1], range(1, 3)))
    begin = CountingBegin(db_engine)
    writer = EventWriter(begin)
    results = await asyncio.gather(
        writer.write(batch(ids[0], range(1, 3))),
        writer.write(batch(ids[1], range(2, 4))),  # seq 2 exists: the primary key refuses it
        writer.write(batch(ids[2], range(1, 3))),
        return_exceptions=True,
    )
    assert [type(result) for result in results] == [type(None), IntegrityError, type(None)]
    # The group, then each batch alone; on PostgreSQL the failing one once more
    # through SQLAlchemy, for its IntegrityError (the driver's is asyncpg's own).
    assert begin.transactions == (5 if db_engine.dialect.name == "postgresql" else 4)
    assert await stored(db_sessionmaker) == {
        ids[0]: (2, [1, 2]),
        ids[1]: (2, [1, 2]),
        ids[2]: (2, [1, 2]),
    }


async def test_no_free_connection_fails_the_whole_group_and_writes_nothing(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ids = await make_runs(db_sessionmaker, 2)
    begin = CountingBegin(db_engine, failures=1)
    writer = EventWriter(begin)
    results = await asyncio.gather(
        *(writer.write(batch(run_id, range(1, 2))) for run_id in ids), return_exceptions=True
    )
    assert [type(result) for result in results] == [PoolTimeout, PoolTimeout]
    assert begin.transactions == 1  # not retried one by one: each would wait the same
    assert await stored(db_sessionmaker) == {run_id: (0, []) for run_id in ids}
    await asyncio.gather(*(writer.write(batch(run_id, range(1, 2))) for run_id in ids))
    assert await stored(db_sessionmaker) == {run_id: (1, [1]) for run_id in ids}


@pytest.mark.usefixtures("as_operator")
async def test_sessions_are_released_in_the_groups_transaction(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    ids = await make_runs(db_sessionmaker, 3)
    async with db_sessionmaker() as session, session.begin():
        for run_id in ids:
            assert await store.acquire_session(session, DEFAULT_TENANT, f"s-{run_id}", run_id)
        # s-r2 is held by another run by now: releasing it as r2 must not free it
        assert await store.acquire_session(session, DEFAULT_TENANT, "s-r2", "r2")
        await session.execute(
            update(SessionRow).where(SessionRow.id == "s-r2").values(active_run_id="other")
        )
    begin = CountingBegin(db_engine)
    writer = EventWriter(begin)
    batches = [batch(run_id, range(1, 2)) for run_id in ids]
    batches[0].release = Release(
        DEFAULT_TENANT, "s-r0", state={"n": 1}, messages=[{"role": "user", "content": "hi"}]
    )
    batches[1].release = Release(DEFAULT_TENANT, "s-r1")  # state kept, no history
    batches[2].release = Release(DEFAULT_TENANT, "s-r2", state={"n": 3})
    await asyncio.gather(*(writer.write(item) for item in batches))
    assert begin.transactions == 1
    async with db_sessionmaker() as session:
        rows = (
            await session.execute(
                select(SessionRow.id, SessionRow.active_run_id, SessionRow.state).order_by(
                    SessionRow.id
                )
            )
        ).all()
        assert [tuple(row) for row in rows] == [
            ("s-r0", None, {"n": 1}),
            ("s-r1", None, {}),
            ("s-r2", "other", {"n": 3}),
        ]
        assert await sessions.history(session, "s-r0", 5) == [{"role": "user", "content": "hi"}]
        assert await sessions.history(session, "s-r1", 5) == []
