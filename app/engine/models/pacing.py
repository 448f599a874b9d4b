"""Read pacing: while the event loop is saturated, a model stream's next network
read waits a little, so that the tokens that arrive meanwhile come in one read.

Every read of a model stream costs about the same work whatever it carries: the
socket read, aiohttp's parser, waking the run's task, the SSE and JSON parsing,
an event, its share of an event write, a fan-out and an SSE send to the client.
A server streaming many answers at once spends most of its CPU there, reading
one or two tokens at a time, where the same answer arriving in fewer reads costs
about half (bench/RESULTS.md has the figures).

So while the loop's thread has been busy for most of the last window (its own
CPU time, and on Linux the time it waited for a CPU, over the wall time,
`engage`; or the window's timer ran a whole window late), the transport of a
stream that has just been read is paused, for up to `max_hold`, and resumed by
one timer shared by every held stream. The kernel buffers what arrives
meanwhile, and the next read takes all of it. Once the loop has room again
(below `release`), every held stream is resumed at once and reads go back to
being handed over as they arrive. Under load a client sees the answer in
pieces up to `max_hold` apart instead of a piece per token; a server with room
adds no delay at all.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

WINDOW = 0.05  # seconds of loop time per load measurement
SCHEDSTAT = "/proc/thread-self/schedstat"  # Linux: ns on a CPU, ns waiting for one, slices


def demand_time() -> float:
    """Seconds the calling thread has run or waited to run (Linux's schedstat),
    else its CPU time: a loop sharing its core with other threads or processes
    (SQLite's thread, the database server) is saturated below 100% CPU."""
    try:
        with open(SCHEDSTAT, "rb") as stats:
            ran, waited = (int(field) for field in stats.read().split()[:2])
    except (OSError, ValueError):
        ran = 0
    if not ran:  # not kept by this kernel: a running thread has run
        return time.thread_time()
    return (ran + waited) / 1e9


ENGAGE = 0.9  # the loop thread's busy share at which reads start to wait
RELEASE = 0.7  # ... and below which they stop


class Transport(Protocol):
    """What pacing needs of an asyncio transport."""

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def is_reading(self) -> bool: ...
    def is_closing(self) -> bool: ...


class ReadPacer:
    """Holds the reads of the model streams of one process while its loop is saturated.

    One per process (the model registry's), used by every provider: `track` a
    stream's transport for as long as its body is read.
    """

    def __init__(
        self,
        max_hold: float = 0.2,
        *,
        window: float = WINDOW,
        engage: float = ENGAGE,
        release: float = RELEASE,
        cpu_clock: Callable[[], float] = demand_time,
    ) -> None:
        self.max_hold = max_hold
        self.window = window
        self.engage = engage
        self.release = release
        self.engaged = False
        self.holds = 0  # reads held so far (a counter for /metrics)
        self._cpu_clock = cpu_clock
        self._streams = 0
        self._held: deque[tuple[float, PacedStream]] = deque()  # (due, stream), due in order
        self._monitor: asyncio.TimerHandle | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def enabled(self) -> bool:
        return self.max_hold > 0

    @property
    def streams(self) -> int:
        """Streams being read now."""
        return self._streams

    @property
    def held(self) -> int:
        """Streams whose next read waits now."""
        return sum(1 for _, stream in self._held if stream.holding)

    def track(self, transport: Transport) -> PacedStream:
        """Start pacing the reads of one stream; `PacedStream.close` ends it."""
        self._streams += 1
        if self._monitor is None:
            loop = asyncio.get_running_loop()
            self._monitor = loop.call_at(
                loop.time() + self.window, self._measure, loop.time(), self._cpu_clock()
            )
        return PacedStream(self, transport)

    def _hold(self, stream: PacedStream) -> bool:
        if not self.engaged:
            return False
        loop = asyncio.get_running_loop()
        due = loop.time() + self.max_hold
        self._held.append((due, stream))
        self.holds += 1
        if self._timer is None:
            self._timer = loop.call_at(due, self._resume_due)
        return True

    def _untrack(self) -> None:
        self._streams -= 1

    def _measure(self, since: float, cpu_since: float) -> None:
        """Every `window` while streams are tracked: is the loop saturated?"""
        loop = asyncio.get_running_loop()
        now, cpu = loop.time(), self._cpu_clock()
        elapsed = max(now - since, 1e-6)
        busy = (cpu - cpu_since) / elapsed
        if busy >= self.engage or elapsed >= 2 * self.window:
            self.engaged = True
        elif busy < self.release and self.engaged:
            self.engaged = False
            self._resume(float("inf"))
        if self._streams > 0:
            self._monitor = loop.call_at(now + self.window, self._measure, now, cpu)
        else:
            self._monitor = None
            self.engaged = False
            self._resume(float("inf"))

    def _resume_due(self) -> None:
        self._timer = None
        # Streams due within the next few ms go now too: one timer, fewer wake-ups.
        self._resume(asyncio.get_running_loop().time() + 0.005)

    def _resume(self, until: float) -> None:
        held = self._held
        while held and held[0][0] <= until:
            held.popleft()[1].resume()
        if self._timer is not None and not held:
            self._timer.cancel()
            self._timer = None
        if held and self._timer is None:
            self._timer = asyncio.get_running_loop().call_at(held[0][0], self._resume_due)


class PacedStream:
    """One model stream's transport, paused after a read while its pacer says so."""

    __slots__ = ("_pacer", "_transport", "holding", "closed")

    def __init__(self, pacer: ReadPacer, transport: Transport) -> None:
        self._pacer = pacer
        self._transport = transport
        self.holding = False
        self.closed = False

    def hold(self) -> None:
        """Called right after a read: the next one may wait (until `resume`).

        A transport already paused (aiohttp's own flow control, a full buffer)
        is left to its owner."""
        if self.holding or self.closed:
            return
        transport = self._transport
        if transport.is_closing() or not transport.is_reading():
            return
        if self._pacer._hold(self):
            transport.pause_reading()
            self.holding = True

    def resume(self) -> None:
        if self.holding:
            self.holding = False
            if not self._transport.is_closing():
                self._transport.resume_reading()

    def close(self) -> None:
        """Stop pacing: the transport reads again now (before its connection is
        released to the pool, or the rest of the body drained)."""
        if not self.closed:
            self.closed = True
            self.resume()
            self._pacer._untrack()
