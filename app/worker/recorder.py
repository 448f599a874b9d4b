"""Stores a run's events in order, in batches, and publishes them after commit.

Events wait in a small buffer (flushed after `flush_interval` or `max_batch`
events); an event that announces a checkpoint, and the run's last event, are
committed at once together with whatever the buffer holds and the run-row
changes that go with them, before the worker goes on. Seqs are handed out
inside the write, so a failed write leaves no gap. The write itself goes
through the process's `EventWriter` (group commit with other runs); adjacent
text deltas waiting in the buffer are merged first (`coalesce`). Writes are
shielded from cancellation: `drain()` waits for the one in flight, so a
cancelled worker never leaves a half-known batch behind.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.db import utcnow
from app.engine.events import STREAM_END_EVENTS as END_EVENTS
from app.engine.events import BaseEvent, RunCompleted, RunContent
from app.worker.bus import Frame, RunChannel
from app.worker.notify import Notifier
from app.worker.writer import Batch, EventWriter, LeaseLost, Release

log = logging.getLogger("agentd.worker")

Event = BaseEvent | RunCompleted
POOL_RETRIES = 5


def encode_event(event: Event) -> bytes:
    return event.__pydantic_serializer__.to_json(event)


def coalesce(events: list[Event]) -> list[Event]:
    """Adjacent text deltas of one agent's answer merged into one event: deltas that
    wait for the same write reach every reader at the same moment anyway."""
    merged: list[Event] = []
    parts: list[str] = []  # texts to join into merged[-1], when it is a text delta

    def close_run() -> None:
        if len(parts) > 1:
            merged[-1] = merged[-1].model_copy(update={"content": "".join(parts)})
        parts.clear()

    for event in events:
        previous = merged[-1] if merged else None
        if (
            type(event) is RunContent
            and isinstance(event.content, str)
            and parts
            and previous is not None
            and event.agent_id == previous.agent_id
            and event.content_type == previous.content_type  # type: ignore[union-attr]
        ):
            parts.append(event.content)
            continue
        close_run()
        merged.append(event)
        if type(event) is RunContent and isinstance(event.content, str):
            parts.append(event.content)
    close_run()
    return merged


class RunRecorder:
    def __init__(
        self,
        *,
        run_id: str,
        last_seq: int,
        writer: EventWriter,
        channel: RunChannel,
        owner: str | None,
        notifier: Notifier,
        expect_statuses: tuple[str, ...] | None = None,
        flush_interval: float = 0.02,
        max_batch: int = 64,
        pool_retries: int = POOL_RETRIES,
        retry_delay: float = 0.2,
    ) -> None:
        self.run_id = run_id
        self.committed_seq = last_seq
        self._writer = writer
        self._channel = channel
        self._owner = owner
        self.notifier = notifier
        self._statuses = expect_statuses
        self._interval = flush_interval
        self._pool_retries = pool_retries
        self._retry_delay = retry_delay
        self._max_batch = max_batch
        self._buffer: list[Event] = []
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._timer_task: asyncio.Task[None] | None = None

    async def add(self, event: Event) -> None:
        """Record an event in the next batch (within `flush_interval`). Events that
        announce a checkpoint, and the run's end, go through `commit` instead."""
        self._buffer.append(event)
        if len(self._buffer) >= self._max_batch:
            await self.commit()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._buffer and (self._timer_task is None or self._timer_task.done()):
            self._timer_task = asyncio.create_task(self._flush_quietly())

    async def _flush_quietly(self) -> None:
        try:
            await self.commit()
        except Exception:  # the worker meets the failure again on its next write
            log.warning("batched event write failed for run %s", self.run_id, exc_info=True)

    async def commit(
        self,
        event: Event | None = None,
        *,
        values: dict[str, Any] | None = None,
        release: Release | None = None,
        wake_claimers: bool = False,
    ) -> None:
        """Write the buffer, `event`, run-row `values` and `release` in one
        transaction, then publish the events to live subscribers. With
        `wake_claimers`, other workers hear there may be work (a session freed)."""
        async with self._lock:
            await self._settle()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            events, self._buffer = coalesce(self._buffer), []
            if event is not None:
                events.append(event)
            if not events and not values and release is None:
                return
            write = asyncio.ensure_future(self._write(events, values or {}, release, wake_claimers))
            self._inflight = write
            await asyncio.shield(write)

    async def _write(
        self,
        events: list[Event],
        values: dict[str, Any],
        release: Release | None,
        wake_claimers: bool,
    ) -> None:
        frames = []
        seq = self.committed_seq
        for event in events:
            seq += 1
            event.seq = seq
            frames.append(Frame(seq, event.event, encode_event(event)))
        now = utcnow()
        try:
            for attempt in range(self._pool_retries + 1):
                try:
                    await self._store(frames, seq, now, values, release)
                    break
                except PoolTimeout:
                    # Every connection is busy (a load peak): wait for one rather
                    # than fail the run; the events are not lost either way.
                    if attempt == self._pool_retries:
                        raise
                    log.warning("run %s: no database connection free; retrying", self.run_id)
                    await asyncio.sleep(self._retry_delay * (attempt + 1))
        except IntegrityError:  # these seqs exist: another writer owns the run now
            raise LeaseLost(self.run_id) from None
        except LeaseLost:
            raise
        except BaseException:
            # Nothing was stored (pool timeout, lost connection, cancelled mid-write):
            # the events go back to the front of the buffer, to be written next time.
            self._buffer[:0] = events
            raise
        self.committed_seq = seq
        if frames:
            self._channel.publish(frames)
        if frames or wake_claimers:
            self.notifier.committed(self.run_id, seq if frames else None, wake_claimers)

    async def _store(
        self,
        frames: list[Frame],
        seq: int,
        now: datetime,
        values: dict[str, Any],
        release: Release | None,
    ) -> None:
        row_values: dict[str, Any] = {"updated_at": now, **values}
        if frames:
            row_values["last_seq"] = seq
        await self._writer.write(
            Batch(
                run_id=self.run_id,
                owner=self._owner,
                statuses=self._statuses,
                rows=[
                    {"seq": f.seq, "type": f.event, "data": f.data.decode(), "created_at": now}
                    for f in frames
                ],
                values=row_values,
                release=release,
            )
        )

    def discard_endings(self) -> None:
        """Drop a buffered end event (its write failed): the run ends another way."""
        self._buffer = [e for e in self._buffer if e.event not in END_EVENTS]

    async def _settle(self) -> None:
        """Wait for a write that outlived its cancelled caller, so writes never overlap."""
        inflight = self._inflight
        if inflight is not None and not inflight.done():
            try:
                await asyncio.shield(inflight)
            except Exception:
                log.debug("write in flight failed for run %s", self.run_id, exc_info=True)

    async def drain(self) -> None:
        """Stop the batching timer and wait for any write in flight; the buffer
        stays, to be committed with the run's last event."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        timer_task = self._timer_task
        if timer_task is not None and not timer_task.done():
            await asyncio.shield(timer_task)
        await self._settle()
