"""Live fan-out of run events inside one process.

The worker of a run publishes each batch of events to the run's channel right
after the batch is committed, so everything a live subscriber sees is already
stored, and a replay returns the same frames. One channel per run, shared by all
its subscribers; each frame is encoded for SSE once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class Frame:
    """One stored event: its seq, name, JSON text and ready-to-send SSE bytes
    (encoded once, shared by every subscriber)."""

    seq: int
    event: str
    data: bytes
    sse: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sse = b"id: %d\nevent: %s\ndata: %s\n\n" % (self.seq, self.event.encode(), self.data)
        object.__setattr__(self, "sse", sse)


class RunChannel:
    """The events a worker in this process published for one run, in order."""

    def __init__(
        self, run_id: str, first_seq: int, on_change: Callable[[str], None] | None = None
    ) -> None:
        self.run_id = run_id
        self.first_seq = first_seq  # the seq of the first frame this channel will hold
        self.frames: list[Frame] = []
        self.closed = False
        self._changed = asyncio.Event()
        self._on_change = on_change

    @property
    def last_seq(self) -> int:
        return self.frames[-1].seq if self.frames else self.first_seq - 1

    def covers(self, after: int) -> bool:
        """Whether every frame after `after` is (or will be) in this channel."""
        return after + 1 >= self.first_seq

    def since(self, after: int) -> list[Frame]:
        start = after + 1 - self.first_seq
        return self.frames[start:] if start >= 0 else self.frames[:]

    def publish(self, frames: list[Frame]) -> None:
        self.frames.extend(frames)
        self._notify()

    def close(self) -> None:
        """The worker stopped: no more frames will come from this process."""
        self.closed = True
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        if self._on_change is not None:
            self._on_change(self.run_id)

    async def wait(self, after: int, within: float) -> None:
        """Return when a frame after `after` exists, the channel closes, or on timeout."""
        if self.last_seq > after or self.closed:
            return
        changed = self._changed
        try:
            async with asyncio.timeout(within):
                await changed.wait()
        except TimeoutError:
            return


class EventBus:
    """The channels of the runs whose workers live in this process.

    `on_change(run_id)` is called when a run's channel opens, publishes or
    closes: subscribers waiting on the database path wake up at once."""

    def __init__(self, on_change: Callable[[str], None] | None = None) -> None:
        self._channels: dict[str, RunChannel] = {}
        self._on_change = on_change

    def open(self, run_id: str, first_seq: int) -> RunChannel:
        channel = RunChannel(run_id, first_seq, self._on_change)
        previous = self._channels.get(run_id)
        if previous is not None:
            previous.close()
        self._channels[run_id] = channel
        if self._on_change is not None:
            self._on_change(run_id)
        return channel

    def get(self, run_id: str) -> RunChannel | None:
        return self._channels.get(run_id)

    def close(self, channel: RunChannel) -> None:
        channel.close()
        if self._channels.get(channel.run_id) is channel:
            del self._channels[channel.run_id]

    def __len__(self) -> int:
        return len(self._channels)
