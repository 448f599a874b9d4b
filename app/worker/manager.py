"""The run manager: this process's worker, composed of its parts.

`Capacity` counts run slots, `RunExecutor` runs one task per run_id, `Claims`
takes queued and orphaned runs and keeps the leases alive. The manager wires
them to the notifier, starts and stops them, and is what the run service calls:
launch a run it created, request a cancel wherever the run executes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.engine.loop import Runner
from app.engine.state import RunState
from app.ids import new_id
from app.notify import Notifier
from app.worker import store
from app.worker.bus import EventBus
from app.worker.capacity import Admission, Capacity
from app.worker.claims import Claims
from app.worker.executor import Prepare, RunExecutor
from app.worker.store import NewRun
from app.worker.writer import EventWriter


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


class RunManager:
    def __init__(
        self,
        *,
        maker: async_sessionmaker[AsyncSession],
        writer: EventWriter,
        runner: Runner,
        bus: EventBus,
        notifier: Notifier,
        prepare: Prepare,
        lease_seconds: float = 15.0,
        sweep_interval: float = 2.0,
        max_concurrent_runs: int = 512,
        max_attempts: int = 3,
        flush_interval: float = 0.02,
    ) -> None:
        self.maker = maker
        self.bus = bus
        self.notifier = notifier
        self.owner = worker_id()
        self.lease_seconds = lease_seconds
        self.capacity = Capacity(max_concurrent_runs)
        self.executor = RunExecutor(
            maker=maker,
            writer=writer,
            runner=runner,
            bus=bus,
            notifier=notifier,
            capacity=self.capacity,
            prepare=prepare,
            owner=self.owner,
            max_attempts=max_attempts,
            flush_interval=flush_interval,
        )
        self.claims = Claims(
            maker=maker,
            executor=self.executor,
            capacity=self.capacity,
            lease=self.lease,
            lease_seconds=lease_seconds,
            sweep_interval=sweep_interval,
        )
        self.executor.on_run_done = self.claims.on_run_done
        self._loops: list[asyncio.Task[None]] = []
        notifier.on_control(self._on_control)

    # Lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        self._loops = [
            asyncio.create_task(self.claims.heartbeat(), name="agentd-heartbeat"),
            asyncio.create_task(self.claims.sweeper(), name="agentd-sweeper"),
        ]

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop taking work and hand running runs back for another worker."""
        self.capacity.closing = True
        for loop in self._loops:
            loop.cancel()
        if await self.executor.stop(grace):
            await self.notifier.control(None, "orphans")  # handed back: take them now
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    @property
    def closing(self) -> bool:
        return self.capacity.closing

    @property
    def in_flight(self) -> int:
        """Runs executing in this process now."""
        return self.capacity.in_flight

    @property
    def room(self) -> int:
        return self.capacity.room

    @property
    def max_concurrent_runs(self) -> int:
        return self.capacity.max_concurrent_runs

    @property
    def ended(self) -> collections.Counter[str]:
        """How the runs this process executed ended, by status."""
        return self.executor.ended

    @property
    def on_load(self) -> Callable[[int], None] | None:
        """Told the number of runs in flight or being created whenever it changes."""
        return self.capacity.on_load

    @on_load.setter
    def on_load(self, callback: Callable[[int], None] | None) -> None:
        self.capacity.on_load = callback

    @property
    def writer(self) -> EventWriter:
        return self.executor.writer

    def lease(self) -> dict[str, Any]:
        """The columns that make a run this worker's."""
        return {
            "lease_owner": self.owner,
            "lease_expires_at": store.lease_until(self.lease_seconds),
        }

    def admitting(self) -> contextlib.AbstractContextManager[Admission]:
        """A run being created here (see `Capacity.admitting`)."""
        return self.capacity.admitting()

    # Starting and cancelling ---------------------------------------------------

    def launch(
        self,
        run_id: str,
        *,
        resumed: bool = False,
        run: NewRun | None = None,
        state: RunState | None = None,
    ) -> None:
        self.executor.launch(run_id, resumed=resumed, run=run, state=state)

    async def cancel_run(self, run_id: str) -> None:
        """Request a run's cancel durably; interrupt it here or tell its worker."""
        async with self.maker() as session, session.begin():
            await store.update_owned(
                session, run_id, None, {"cancel_requested": True}, store.ACTIVE_STATUSES
            )
            if not self.executor.executes(run_id):
                await self.notifier.control(session, "cancel", run_id)
        await self.executor.cancel(run_id)

    def request_cancel(self, run_id: str) -> None:
        """`cancel_run` without waiting (a streaming client went away)."""
        self.executor.spawn(self.cancel_run(run_id))

    async def cancel(self, run_id: str) -> None:
        """Interrupt this process's task of a run, and wait for it to record the end."""
        await self.executor.cancel(run_id)

    def _on_control(self, kind: str, payload: str) -> None:
        if kind == "cancel":
            self.executor.spawn_cancel(payload)
        else:
            self.claims.on_control(kind, payload)

    # Claiming (the sweeper does this on its own; exposed for tests and tools) ---

    async def claim_queued(self) -> int:
        return await self.claims.claim_queued()

    async def take_over_stale(self) -> int:
        return await self.claims.take_over_stale()

    async def sweep(self) -> None:
        await self.claims.sweep()
