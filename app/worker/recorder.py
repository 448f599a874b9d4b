"""Stores a run's events in order, in batches, and publishes them after commit.

Events wait in a small buffer (flushed within `flush_interval`, or at
`max_batch` events); an event that announces a checkpoint, and the run's last
event, are committed at once together with whatever the buffer holds and the
run-row changes that go with them, before the worker goes on. One `Flusher` per
process times the batched writes of every run: each tick hands all waiting
buffers to the writer at once, with no timer or task per run. Seqs are handed out
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
from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.db import utcnow
from app.engine.events import STREAM_END_EVENTS as END_EVENTS
from app.engine.events import BaseEvent, RunCompleted, RunContent
from app.notify import Notifier
from app.worker.bus import Frame, RunChannel
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


class Flusher:
    """The one timer behind every recorder's batched writes: within `interval` of
    a recorder's first waiting event, a tick submits the buffers of all recorders
    with events waiting, so a thousand live runs cost one timer, not a thousand
    timers and tasks."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self._waiting: dict[RunRecorder, None] = {}  # insertion-ordered set
        self._timer: asyncio.TimerHandle | None = None

    def mark(self, recorder: RunRecorder) -> None:
        self._waiting[recorder] = None
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

    def forget(self, recorder: RunRecorder) -> None:
        self._waiting.pop(recorder, None)

    def _tick(self) -> None:
        self._timer = None
        waiting, self._waiting = self._waiting, {}
        for recorder in waiting:
            recorder.flush_batched()


class RunRecorder:
    def __init__(
        self,
        *,
        run_id: str,
        tenant_id: str,
        last_seq: int,
        writer: EventWriter,
        channel: RunChannel,
        owner: str | None,
        notifier: Notifier,
        expect_statuses: tuple[str, ...] | None = None,
        flusher: Flusher | None = None,
        flush_interval: float = 0.02,
        max_batch: int = 64,
        pool_retries: int = POOL_RETRIES,
        retry_delay: float = 0.2,
    ) -> None:
        self.run_id = run_id
        self.tenant_id = tenant_id  # the tenant of the session its run releases
        self.committed_seq = last_seq
        self._writer = writer
        self._channel = channel
        self._owner = owner
        self.notifier = notifier
        self._statuses = expect_statuses
        self._flusher = flusher or Flusher(flush_interval)
        self._pool_retries = pool_retries
        self._retry_delay = retry_delay
        self._max_batch = max_batch
        self._buffer: list[Event] = []
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Future[None] | None = None

    async def add(self, event: Event) -> None:
        """Record an event in the next batch (within `flush_interval`). Events that
        announce a checkpoint, and the run's end, go through `commit` instead."""
        self._buffer.append(event)
        if len(self._buffer) >= self._max_batch:
            await self.commit()
        else:
            self._flusher.mark(self)

    def flush_batched(self) -> None:
        """Submit the buffer to the writer now (the flusher's tick); the events are
        published once committed. A failed write puts them back, to go with the
        next one (the worker meets a lasting failure on its next commit)."""
        if not self._buffer or self._lock.locked():
            return  # the commit under way takes the buffer
        if self._inflight is not None and not self._inflight.done():
            self._flusher.mark(self)  # one write at a time: the next tick
            return
        events, self._buffer = coalesce(self._buffer), []
        frames, seq = self._frames(events)
        written = self._writer.submit(self._batch(frames, seq, utcnow(), {}, None))
        # Done once the outcome is applied below, not merely known: a commit that
        # waits for it must find the events published, or back in the buffer.
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight = settled
        written.add_done_callback(partial(self._batched_done, events, frames, seq, settled))

    def _batched_done(
        self,
        events: list[Event],
        frames: list[Frame],
        seq: int,
        settled: asyncio.Future[None],
        written: asyncio.Future[None],
    ) -> None:
        settled.set_result(None)
        failure = None if written.cancelled() else written.exception()
        if written.cancelled() or failure is not None:
            self._buffer[:0] = events
            if failure is not None and not isinstance(failure, LeaseLost | IntegrityError):
                log.warning("batched event write failed for run %s", self.run_id, exc_info=failure)
            return
        self.committed_seq = seq
        self._channel.publish(frames)
        self.notifier.committed(self.run_id, seq, False)

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
            self._flusher.forget(self)
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
        frames, seq = self._frames(events)
        now = utcnow()
        try:
            for attempt in range(self._pool_retries + 1):
                try:
                    await self._writer.write(self._batch(frames, seq, now, values, release))
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

    def _frames(self, events: list[Event]) -> tuple[list[Frame], int]:
        """The events numbered after the last committed seq, encoded once."""
        frames = []
        seq = self.committed_seq
        for event in events:
            seq += 1
            event.seq = seq
            frames.append(Frame(seq, event.event, encode_event(event)))
        return frames, seq

    def _batch(
        self,
        frames: list[Frame],
        seq: int,
        now: datetime,
        values: dict[str, Any],
        release: Release | None,
    ) -> Batch:
        row_values: dict[str, Any] = {"updated_at": now, **values}
        if frames:
            row_values["last_seq"] = seq
        return Batch(
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
        """Stop batched writes and wait for any write in flight; the buffer stays,
        to be committed with the run's last event."""
        self._flusher.forget(self)
        await self._settle()
