"""Wake-ups across processes: PostgreSQL LISTEN/NOTIFY.

Notifications are hints, never payloads: `run_id:seq` on the events channel
when a batch of a run's events is committed, and `cancel:<run_id>` / `work` on
the control channel. Subscribers read the events from the table; a short poll
covers a missed notification. On SQLite (one process) there is nothing to
listen to and waiting falls back to the poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

log = logging.getLogger("agentd.notify")

EVENTS_CHANNEL = "agentd_events"
CONTROL_CHANNEL = "agentd_control"
# The `agent` control payload that means every agent (no agent id can be "*").
ANY_AGENT = "*"

ControlHandler = Callable[[str, str], None]


class Notifier:
    """In-process waiters keyed by run_id; subclasses add a cross-process transport."""

    #: How long a subscriber without a notification waits before reading again.
    poll_interval = 0.2

    def __init__(self) -> None:
        # run_id -> (the event its waiters wait on, how many wait)
        self._waiters: dict[str, tuple[asyncio.Event, int]] = {}
        self._control: list[ControlHandler] = []

    def on_control(self, handler: ControlHandler) -> None:
        self._control.append(handler)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def committed(self, run_id: str, seq: int | None, work: bool) -> None:
        """Called after a transaction stored a run's events up to `seq` (None: no
        events) and, with `work`, freed a session or queued a run."""
        if work:
            self._dispatch_control("work", "")

    def queued(self) -> None:
        """Called after a transaction stored queued runs: every process with room
        should look (sent with the other hints, not from that transaction)."""
        self._dispatch_control("work", "queued")

    async def control(
        self, session: AsyncSession | AsyncConnection | None, kind: str, payload: str = ""
    ) -> None:
        """Tell every process (this one too) about a cancel or new work."""
        self._dispatch_control(kind, payload)

    def dispatch_local(self, kind: str, payload: str = "") -> None:
        """Tell this process's control handlers now (after a commit that `control`
        announced to the other processes)."""
        self._dispatch_control(kind, payload)

    async def wait_run(self, run_id: str, within: float) -> None:
        """Return on a notification for `run_id`, or after `within` seconds."""
        event, waiting = self._waiters.get(run_id) or (asyncio.Event(), 0)
        self._waiters[run_id] = (event, waiting + 1)
        try:
            async with asyncio.timeout(within):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            entry = self._waiters.get(run_id)
            if entry is not None and entry[0] is event:  # not woken: leave no trace
                if entry[1] <= 1:
                    del self._waiters[run_id]
                else:
                    self._waiters[run_id] = (event, entry[1] - 1)

    def wake(self, run_id: str) -> None:
        """Something changed for `run_id` in this process: wake its waiters."""
        self._wake(run_id)

    def _wake(self, run_id: str) -> None:
        entry = self._waiters.pop(run_id, None)
        if entry is not None:
            entry[0].set()

    def _dispatch_control(self, kind: str, payload: str) -> None:
        for handler in self._control:
            try:
                handler(kind, payload)
            except Exception:
                log.exception("control handler failed for %s", kind)


class PostgresNotifier(Notifier):
    """LISTEN on one dedicated asyncpg connection, reconnecting when it drops."""

    poll_interval = 1.0
    flush_interval = 0.005

    def __init__(self, database_url: str) -> None:
        super().__init__()
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._connection: Any = None
        self._pending_events: dict[str, int] = {}
        self._pending_work = False
        self._pending_queued = False
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="agentd-listen")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._connected.wait()

    async def stop(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        if self._flush_task is not None:
            with contextlib.suppress(Exception):
                await self._flush_task
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def committed(self, run_id: str, seq: int | None, work: bool) -> None:
        # NOTIFY serializes the commits that carry it (one global queue lock), so
        # hints are not sent from the run's transactions: they are gathered and
        # sent together, once per tick, on the listening connection.
        if seq is not None:
            self._pending_events[run_id] = seq
        if work:
            self._pending_work = True
        self._flush_soon()

    def queued(self) -> None:
        self._pending_queued = True
        self._flush_soon()

    def _flush_soon(self) -> None:
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.flush_interval, self._schedule_flush)

    def _schedule_flush(self) -> None:
        self._flush_handle = None
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        events = [f"{run_id}:{seq}" for run_id, seq in self._pending_events.items()]
        work, self._pending_events, self._pending_work = self._pending_work, {}, False
        queued, self._pending_queued = self._pending_queued, False
        connection = self._connection
        if connection is None or not (events or work or queued):
            return  # subscribers fall back to polling
        try:
            if events:
                await connection.execute(
                    "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload",
                    EVENTS_CHANNEL,
                    events,
                )
            if queued:  # says all that `work` says, and that a run waits
                await connection.execute("SELECT pg_notify($1, 'work:queued')", CONTROL_CHANNEL)
            elif work:
                await connection.execute("SELECT pg_notify($1, 'work:')", CONTROL_CHANNEL)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("notification send failed", exc_info=True)
        finally:
            pending = self._pending_events or self._pending_work or self._pending_queued
            if pending and self._flush_handle is None:
                loop = asyncio.get_running_loop()
                self._flush_handle = loop.call_later(self.flush_interval, self._schedule_flush)

    async def control(
        self, session: AsyncSession | AsyncConnection | None, kind: str, payload: str = ""
    ) -> None:
        message = f"{kind}:{payload}"
        statement = text("SELECT pg_notify(:channel, :payload)")
        params = {"channel": CONTROL_CHANNEL, "payload": message}
        if session is not None:
            await session.execute(statement, params)
            return
        try:
            connection = await asyncpg.connect(self._dsn, timeout=5)
            try:
                await connection.execute("SELECT pg_notify($1, $2)", CONTROL_CHANNEL, message)
            finally:
                await connection.close()
        except (OSError, asyncpg.PostgresError):
            log.warning("control notification %s failed", kind, exc_info=True)

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            connection: Any = None
            try:
                connection = await asyncpg.connect(self._dsn, timeout=10)
                await connection.add_listener(EVENTS_CHANNEL, self._on_event)
                await connection.add_listener(CONTROL_CHANNEL, self._on_control)
                self._connection = connection
                self._connected.set()
                # Notices sent while not listening are lost: assume a run was
                # queued, and that any agent may have changed.
                self._dispatch_control("work", "queued")
                self._dispatch_control("agent", ANY_AGENT)
                self._dispatch_control("api_key", "*")
                delay = 0.5
                closed = asyncio.Event()
                connection.add_termination_listener(_setter(closed))
                await closed.wait()
                log.warning("notification connection closed; reconnecting")
            except asyncio.CancelledError:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
                raise
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("notification connection failed: %s", exc)
            self._connection = None
            self._connected.clear()
            # Subscribers fall back to polling meanwhile; wake them all to re-read.
            for run_id in list(self._waiters):
                self._wake(run_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)

    def _on_event(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        run_id, _, _seq = payload.rpartition(":")
        self._wake(run_id)

    def _on_control(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        kind, _, rest = payload.partition(":")
        self._dispatch_control(kind, rest)


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _connection: event.set()


def create_notifier(database_url: str) -> Notifier:
    if database_url.startswith("postgresql"):
        return PostgresNotifier(database_url)
    return Notifier()
