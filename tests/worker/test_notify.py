"""Wake-ups: waiters are woken by their run's news and leave no trace; a
PostgreSQL listener that reconnects assumes it missed notices."""

from __future__ import annotations

import asyncio

import asyncpg

from app.agents.resolver import StoredAgents
from app.engine.spec import AgentSpec
from app.notify import ANY_AGENT, Notifier, PostgresNotifier
from tests.conftest import POSTGRES_SERVER


async def test_waiters_are_woken_and_forgotten() -> None:
    notifier = Notifier()
    waits = [asyncio.create_task(notifier.wait_run("r", 5)) for _ in range(2)]
    await asyncio.sleep(0)
    notifier.wake("r")
    done, _ = await asyncio.wait(waits, timeout=1)
    assert len(done) == 2
    assert notifier._waiters == {}


async def test_a_wait_that_times_out_leaves_no_trace() -> None:
    notifier = Notifier()
    long_wait = asyncio.create_task(notifier.wait_run("r", 5))
    await notifier.wait_run("r", 0.01)  # times out; the other waiter still waits
    await notifier.wait_run("quiet", 0.01)
    assert set(notifier._waiters) == {"r"}
    notifier.wake("r")
    await asyncio.wait_for(long_wait, timeout=1)
    assert notifier._waiters == {}


async def test_a_cancelled_wait_leaves_no_trace() -> None:
    notifier = Notifier()
    wait = asyncio.create_task(notifier.wait_run("r", 5))
    await asyncio.sleep(0)
    wait.cancel()
    await asyncio.gather(wait, return_exceptions=True)
    assert notifier._waiters == {}


async def test_a_listener_that_reconnects_assumes_it_missed_work_and_agent_changes() -> None:
    """Notices sent while the LISTEN connection was down are lost: on every
    (re)connect the handlers hear that work may be queued and any agent and API
    key changed."""
    url = POSTGRES_SERVER.replace("postgresql://", "postgresql+asyncpg://")
    notifier = PostgresNotifier(url)
    heard: list[tuple[str, str]] = []
    both = asyncio.Event()

    def hear(kind: str, payload: str) -> None:
        heard.append((kind, payload))
        if len(heard) == 3:
            both.set()

    notifier.on_control(hear)
    await notifier.start()
    try:
        assert heard == [("work", "queued"), ("agent", ANY_AGENT), ("api_key", "*")]
        heard.clear()
        both.clear()
        pid = notifier._connection.get_server_pid()
        admin = await asyncpg.connect(POSTGRES_SERVER)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await asyncio.wait_for(both.wait(), timeout=10)
        assert heard == [("work", "queued"), ("agent", ANY_AGENT), ("api_key", "*")]
        assert notifier._connection.get_server_pid() != pid
    finally:
        await notifier.stop()


def test_forgetting_any_agent_empties_the_resolver() -> None:
    agents = StoredAgents(maker=None)  # type: ignore[arg-type]
    first = AgentSpec.model_validate({"id": "a", "version": 1, "model": "test:echo"})
    other = AgentSpec.model_validate({"id": "b", "version": 3, "model": "test:echo"})
    agents._remember("t1", first)
    agents._remember("t2", first)
    agents._remember("t1", other)
    agents.on_control("agent", "a")  # in every tenant
    assert list(agents._cache) == [("t1", "b", 3)]
    agents.on_control("agent", ANY_AGENT)
    assert list(agents._cache) == []
