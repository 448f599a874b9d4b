"""How many runs this process may execute at once, and who holds the free slots.

A run takes a slot before it launches: a run being created to start here
(`Capacity.admitting` and its `Admission`), or a queued or orphaned run being
claimed (`Capacity.slots`). The slot is counted in `room` from the moment it is
taken, so runs created and claimed at the same moment never count on the same
free slot; once the run is launched its task counts instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


class Capacity:
    def __init__(self, max_concurrent_runs: int) -> None:
        self.max_concurrent_runs = max_concurrent_runs
        self.in_flight = 0  # runs executing in this process (their tasks)
        self.closing = False
        self._starting = 0  # slots taken by runs about to launch here
        self._admitting = 0  # runs being created in a request here
        # Told the number of runs in flight or being created whenever it changes
        # (the collector's sizing).
        self.on_load: Callable[[int], None] | None = None

    @property
    def room(self) -> int:
        """Runs this process may still start: its capacity less the runs in flight
        and those about to launch here."""
        return self.max_concurrent_runs - self.in_flight - self._starting

    @property
    def available(self) -> bool:
        return not self.closing and self.room > 0

    def take_slot(self) -> bool:
        """Count one more run as about to start here, if there is room; the
        holder gives it back with `give_back` once the run is launched."""
        if not self.available:
            return False
        self._starting += 1
        return True

    def give_back(self, slots: int = 1) -> None:
        self._starting -= slots

    def launched(self) -> None:
        self.in_flight += 1
        self._load_changed()

    def finished(self) -> None:
        self.in_flight -= 1
        self._load_changed()

    @contextlib.contextmanager
    def admitting(self) -> Iterator[Admission]:
        """A run being created in this process: part of the load until the block
        ends. Its `Admission.start()` holds a slot until then: launch it inside."""
        admission = Admission(self)
        self._admitting += 1
        self._load_changed()
        try:
            yield admission
        finally:
            if admission.started:
                self.give_back()
            self._admitting -= 1
            self._load_changed()

    @contextlib.contextmanager
    def slots(self) -> Iterator[Callable[[], bool]]:
        """`take()` holds one slot (False when there is no room) until the block
        ends, for runs being claimed: launch them inside the block."""
        held = 0

        def take() -> bool:
            nonlocal held
            if not self.take_slot():
                return False
            held += 1
            return True

        try:
            yield take
        finally:
            self.give_back(held)

    def _load_changed(self) -> None:
        if self.on_load is not None:
            self.on_load(self.in_flight + self._admitting)


class Admission:
    """A run being created (`Capacity.admitting`): `start()` decides whether it
    starts in this process, taking a slot for it if there is one."""

    __slots__ = ("_capacity", "started")

    def __init__(self, capacity: Capacity) -> None:
        self._capacity = capacity
        self.started = False

    def start(self) -> bool:
        """True (and a slot held until the admission ends) when this process has room."""
        if not self.started:
            self.started = self._capacity.take_slot()
        return self.started
