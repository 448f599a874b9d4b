"""The recorder keeps events whose write failed, and numbers them without gaps."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.engine.events import RunContent, RunIntermediateContent
from app.tables import RunEvent
from app.worker.bus import EventBus, RunChannel
from app.worker.notify import Notifier
from app.worker.recorder import RunRecorder
from app.worker.writer import EventWriter
from tests.worker.helpers import CountingBegin, store_runs


async def flaky_recorder(
    db_engine: AsyncEngine, db_sessionmaker: async_sessionmaker[AsyncSession], failures: int
) -> tuple[RunRecorder, RunChannel]:
    """A stored run, and a recorder for it whose first `failures` writes find no
    connection; it retries twice."""
    await store_runs(db_sessionmaker, {"r": "s"})
    channel = EventBus().open("r", 1)
    recorder = RunRecorder(
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
