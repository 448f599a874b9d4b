"""Taking work: queued runs, and running runs whose worker was lost.

Work is claimed, not assigned: queued runs are taken with `FOR UPDATE SKIP
LOCKED` by any worker with room; each running run holds a lease its worker
renews (`heartbeat`); a worker whose lease ran out (a crash, a kill) is replaced
by whoever sweeps first, resuming the run from its last checkpoint. The sweeper
runs every `sweep_interval`, and sooner when told there is work (`on_control`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.tables import Run
from app.worker import store
from app.worker.capacity import Capacity
from app.worker.executor import RunExecutor

log = logging.getLogger("agentd.worker")

# Orphaned runs taken over per sweep: the runs of a dead replica spread over the
# live ones (each takes a few, then lets the others sweep) instead of moving
# together to the first that noticed, to die together at its next crash.
TAKEOVER_BATCH = 4
TAKEOVER_PAUSE = (0.05, 0.3)  # seconds between batches, drawn at random


class Claims:
    def __init__(
        self,
        *,
        maker: async_sessionmaker[AsyncSession],
        executor: RunExecutor,
        capacity: Capacity,
        lease: Callable[[], dict[str, Any]],
        lease_seconds: float,
        sweep_interval: float,
    ) -> None:
        self.maker = maker
        self.executor = executor
        self.capacity = capacity
        self._lease = lease
        self._lease_seconds = lease_seconds
        self._sweep_interval = sweep_interval
        self._work = asyncio.Event()
        self._orphans = False
        # Whether a queued run may be waiting anywhere: a run ending here (capacity or a
        # session freed) looks for queued runs only then. Set by every `work:queued`
        # notice (a run was queued, on any replica); cleared by a claim that finds none
        # queued at all, unless a notice came meanwhile (`_queued_notices` moved on).
        self._queued_maybe = True
        self._queued_notices = 0
        self._more_orphans = False  # the last takeover filled its batch

    def on_control(self, kind: str, payload: str) -> None:
        """`work` (a run queued, a session freed) and `orphans` (a replica handed
        its runs back) notices, from any replica."""
        if kind == "work":
            if payload == "queued":
                self._queued_maybe = True
                self._queued_notices += 1
            if self._queued_maybe:
                self._work.set()
        elif kind == "orphans":
            self._orphans = True
            self._work.set()

    def on_run_done(self) -> None:
        if self._queued_maybe:
            self._work.set()  # capacity freed, and the session may have a queued run

    async def claim_queued(self) -> int:
        """Start queued runs while this worker has room; returns how many."""
        room = self.capacity.room
        if room <= 0 or self.capacity.closing:
            return 0
        notices = self._queued_notices
        claimed: list[str] = []
        with self.capacity.slots() as take_slot:
            async with self.maker() as session, session.begin():
                for run_id, tenant_id, session_id in await store.claimable_queued(session, room):
                    if not take_slot():
                        break  # runs created meanwhile took the room
                    if not await store.acquire_session(session, tenant_id, session_id, run_id):
                        continue
                    values = {"status": "running", "started_at": utcnow(), **self._lease()}
                    values["attempt"] = Run.attempt + 1
                    if await store.transition(session, run_id, ("queued",), values):
                        claimed.append(run_id)
                if (
                    len(claimed) < room
                    and not await store.any_queued(session)
                    and notices == self._queued_notices  # no run was queued meanwhile
                ):
                    self._queued_maybe = False  # until the next run is queued
            for run_id in claimed:
                self.executor.launch(run_id)
        return len(claimed)

    async def take_over_stale(self) -> int:
        """Resume running runs whose worker's lease ran out, a batch at a time."""
        room = self.capacity.room
        self._more_orphans = False
        if room <= 0 or self.capacity.closing:
            return 0
        batch = min(room, TAKEOVER_BATCH)
        async with self.maker() as session:
            stale = await store.stale_runs(session, utcnow(), limit=batch)
        self._more_orphans = len(stale) == batch
        taken = 0
        for run_id in stale:
            if self.executor.executes(run_id):
                continue
            with self.capacity.slots() as take_slot:
                if not take_slot():
                    break
                async with self.maker() as session, session.begin():
                    until = store.lease_until(self._lease_seconds)
                    won = await store.take_over(session, run_id, self.executor.owner, until)
                if won:
                    log.info("run %s: resuming, its worker was lost", run_id)
                    self.executor.launch(run_id, resumed=True)
                    taken += 1
        return taken

    async def sweep(self) -> None:
        await self.take_over_stale()
        await self.claim_queued()

    async def sweeper(self) -> None:
        """Every `sweep_interval`: orphaned runs, then queued ones. A `work` wake-up
        looks at queued runs only; an `orphans` one at both."""
        woken = False
        while True:
            try:
                if woken and not self._orphans:
                    await self.claim_queued()
                else:
                    self._orphans = False
                    await self.sweep()
            except Exception:
                log.warning("sweep failed", exc_info=True)
            woken = False
            if self._more_orphans:  # another batch, once the others had a chance
                await asyncio.sleep(random.uniform(*TAKEOVER_PAUSE))
                self._orphans = True
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._sweep_interval):
                    await self._work.wait()
                    woken = True
            self._work.clear()

    async def heartbeat(self) -> None:
        """Renew this worker's leases, and pick up cancels whose notice was missed."""
        owner = self.executor.owner
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                async with self.maker() as session, session.begin():
                    until = store.lease_until(self._lease_seconds)
                    await store.renew_leases(session, owner, until)
                    cancels = await store.cancel_requested_among(session, owner)
                for run_id in cancels:
                    self.executor.spawn_cancel(run_id)
            except Exception:
                log.warning("lease renewal failed", exc_info=True)
