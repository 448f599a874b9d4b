"""Following a run's events: replay by seq from the database, then the live tail.

`follow` serves frames from this process's live channel when the run's worker
is here, and from the run_events table otherwise (a finished run, a run on
another worker, a run still queued), polling while the run is active and woken
by the notifier. It ends after a terminal event, or after a `RunPaused` that is
the run's newest event. The waits inside are bounded, so a caller that wants to
send keep-alives gets an empty batch every `idle` seconds without frames.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.engine.events import TERMINAL_EVENTS
from app.engine.output import TERMINAL_STATUSES
from app.worker import store
from app.worker.bus import Frame
from app.worker.manager import RunManager

log = logging.getLogger("agentd.worker")


async def follow(
    run_id: str,
    after: int,
    *,
    manager: RunManager,
    maker: async_sessionmaker[AsyncSession],
    stopping: Callable[[], bool] = lambda: False,
    idle: float | None = None,
) -> AsyncGenerator[list[Frame], None]:
    """Batches of consecutive frames after `after`, as they become available; with
    `idle`, an empty batch after each `idle` seconds without frames."""
    bus, notifier = manager.bus, manager.notifier
    poll_interval = notifier.poll_interval if idle is None else min(notifier.poll_interval, idle)
    cursor = after
    paused_at: int | None = None  # a RunPaused seen last: the end, unless more follows
    quiet_since = time.monotonic()
    while not (manager.closing or stopping()):
        if idle is not None and time.monotonic() - quiet_since >= idle:
            yield []
            quiet_since = time.monotonic()
        channel = bus.get(run_id)
        if channel is not None and channel.covers(cursor):
            frames = channel.since(cursor)
            if not frames:
                if paused_at is not None:
                    return
                if channel.closed:
                    continue  # the worker left: the database has the rest
                await channel.wait(cursor, poll_interval)
                continue
        else:
            try:
                async with maker() as session:
                    rows = await store.read_events(session, run_id, cursor)
                    status = None if rows else await store.status_of(session, run_id)
            except (PoolTimeout, DBAPIError):
                # No connection free in time, or the database blinked: the follower
                # keeps its place and reads again, its stream still open.
                log.warning("run %s: reading its events failed; trying again", run_id)
                await notifier.wait_run(run_id, poll_interval)
                continue
            frames = [Frame(seq, kind, data.encode()) for seq, kind, data in rows]
            if not frames:
                if status is None:
                    return  # the run was deleted
                if paused_at is not None or (
                    status[0] in TERMINAL_STATUSES and status[1] <= cursor
                ):
                    return
                if status[0] == "paused" and status[1] <= cursor:
                    return
                await notifier.wait_run(run_id, poll_interval)
                continue
        for index, frame in enumerate(frames):
            if frame.event in TERMINAL_EVENTS:
                yield frames[: index + 1]
                return
        yield frames
        quiet_since = time.monotonic()
        cursor = frames[-1].seq
        paused_at = cursor if frames[-1].event == "RunPaused" else None
