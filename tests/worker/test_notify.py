"""In-process wake-ups: waiters are woken by their run's news, and leave no trace."""

from __future__ import annotations

import asyncio

from app.worker.notify import Notifier


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
