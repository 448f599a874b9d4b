"""The recorder keeps events whose write failed, and numbers them without gaps."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.engine.events import RunContent, RunIntermediateContent
from app.notify import Notifier
from app.principal import DEFAULT_TENANT
from app.tables import RunEvent
from app.worker.bus import EventBus, RunChannel
from app.worker.recorder import Flusher, RunRecorder
from app.worker.writer import EventWriter
from tests.waiting import wait_for
from tests.worker.helpers import CountingBegin, store_runs


async def flaky_recorder(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession], failures: int
) -> tuple[RunRecorder, RunChannel]:
    """A stored run, and a recorder for it whose first `failures` writes find no
    connection; it retries twice."""
    await store_runs(db_sessionmaker, {"r": "s"})
    channel = EventBus().open("r", 1)
    recorder = RunRecorder(
        tenant_id=DEFAULT_TENANT,
        run_id="r",
        last_seq=0,
        writer=EventWriter(CountingBegin(db_engine, failures=failures)),
        channel=channel,
        owner=None,
        notifier=Notifier(),
        flush_interval=60,
        pool_retries=2,
        retry_delay=0.01,
    )
    return recorder, channel


def content(text: Any, agent: str = "a") -> RunContent:
    return RunContent(run_id="r", session_id="s", agent_id=agent, content=text)


async def test_failed_batch_is_written_with_the_next_one(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    recorder, channel = await flaky_recorder(db_engine, db_sessionmaker, failures=3)
    await recorder.add(content("a", agent="a1"))  # other agents: not merged
    await recorder.add(content("b", agent="a2"))
    with pytest.raises(PoolTimeout):  # three failures outlast two retries
        await recorder.commit()
    assert channel.frames == []  # nothing was published
    await recorder.add(content("c", agent="a3"))
    await recorder.commit()
    async with db_sessionmaker() as session:
        rows = (
            await session.execute(select(RunEvent.seq, RunEvent.data).order_by(RunEvent.seq))
        ).all()
    assert [seq for seq, _ in rows] == [1, 2, 3]
    assert ['"content":"a"' in rows[0][1], '"content":"c"' in rows[2][1]] == [True, True]
    assert [frame.seq for frame in channel.frames] == [1, 2, 3]


async def test_a_busy_pool_is_waited_for(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    recorder, channel = await flaky_recorder(db_engine, db_sessionmaker, failures=2)
    await recorder.commit(content("x"))
    assert [frame.seq for frame in channel.frames] == [1]
    assert recorder.committed_seq == 1


async def test_text_deltas_waiting_together_are_merged(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    recorder, channel = await flaky_recorder(db_engine, db_sessionmaker, failures=0)
    for item in (
        content("Hel"),
        content("lo"),
        RunIntermediateContent(run_id="r", session_id="s", agent_id="a", content="~"),
        content(", "),
        content("world"),
        content("!", agent="b"),  # another agent's answer
        content({"structured": True}),  # not text
        content("."),
    ):
        await recorder.add(item)
    await recorder.commit()
    async with db_sessionmaker() as session:
        rows = (
            await session.execute(select(RunEvent.seq, RunEvent.data).order_by(RunEvent.seq))
        ).all()
    stored = [orjson.loads(data) for _, data in rows]
    assert [(event["event"], event.get("content")) for event in stored] == [
        ("RunContent", "Hello"),
        ("RunIntermediateContent", "~"),
        ("RunContent", ", world"),
        ("RunContent", "!"),
        ("RunContent", {"structured": True}),
        ("RunContent", "."),
    ]
    assert [seq for seq, _ in rows] == [1, 2, 3, 4, 5, 6]
    assert [frame.seq for frame in channel.frames] == [1, 2, 3, 4, 5, 6]


async def test_one_tick_writes_every_waiting_run_in_one_transaction(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    runs = {f"r{i}": f"s{i}" for i in range(5)}
    await store_runs(db_sessionmaker, runs)
    begin = CountingBegin(db_engine)
    writer, bus, flusher = EventWriter(begin), EventBus(), Flusher(0.05)
    channels = {run_id: bus.open(run_id, 1) for run_id in runs}
    recorders = [
        RunRecorder(
            tenant_id=DEFAULT_TENANT,
            run_id=run_id,
            last_seq=0,
            writer=writer,
            channel=channels[run_id],
            owner=None,
            notifier=Notifier(),
            flusher=flusher,
        )
        for run_id in runs
    ]
    for recorder in recorders:
        for text in ("a", "b"):
            await recorder.add(
                RunContent(run_id=recorder.run_id, session_id="s", agent_id="x", content=text)
            )
    assert begin.transactions == 0  # waiting for the tick
    assert all(channel.frames == [] for channel in channels.values())
    await wait_for(lambda: all(r.committed_seq == 1 for r in recorders))
    assert begin.transactions == 1  # five runs, one transaction
    for channel in channels.values():
        assert [(f.seq, orjson.loads(f.data)["content"]) for f in channel.frames] == [(1, "ab")]
    async with db_sessionmaker() as session:
        stored = (await session.execute(select(RunEvent.run_id, RunEvent.seq))).all()
    assert sorted(stored) == sorted((run_id, 1) for run_id in runs)


async def test_a_failed_tick_keeps_the_events_for_the_next_write(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await store_runs(db_sessionmaker, {"r": "s"})
    begin = CountingBegin(db_engine, failures=1)
    channel = EventBus().open("r", 1)
    recorder = RunRecorder(
        tenant_id=DEFAULT_TENANT,
        run_id="r",
        last_seq=0,
        writer=EventWriter(begin),
        channel=channel,
        owner=None,
        notifier=Notifier(),
        flusher=Flusher(0.01),
    )
    await recorder.add(content("a", agent="a1"))
    await wait_for(lambda: begin.transactions == 1)  # the tick's write found no connection
    await recorder.drain()
    assert channel.frames == [] and recorder.committed_seq == 0
    await recorder.commit(content("b", agent="a2"))
    assert [(f.seq, orjson.loads(f.data)["content"]) for f in channel.frames] == [
        (1, "a"),
        (2, "b"),
    ]
    async with db_sessionmaker() as session:
        seqs = (await session.scalars(select(RunEvent.seq).order_by(RunEvent.seq))).all()
    assert list(seqs) == [1, 2]


async def test_a_commit_waits_for_the_ticks_write_and_numbers_after_it(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await store_runs(db_sessionmaker, {"r": "s"})
    channel = EventBus().open("r", 1)
    flusher = Flusher(60)
    recorder = RunRecorder(
        tenant_id=DEFAULT_TENANT,
        run_id="r",
        last_seq=0,
        writer=EventWriter(CountingBegin(db_engine)),
        channel=channel,
        owner=None,
        notifier=Notifier(),
        flusher=flusher,
    )
    await recorder.add(content("a", agent="a1"))
    recorder.flush_batched()  # as a tick would: the write is now in flight
    await recorder.add(content("b", agent="a2"))
    recorder.flush_batched()  # one write at a time: waits for the next tick
    await recorder.commit(content("c", agent="a3"))
    assert [f.seq for f in channel.frames] == [1, 2, 3]
    assert [orjson.loads(f.data)["content"] for f in channel.frames] == ["a", "b", "c"]
