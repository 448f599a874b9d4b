"""Garbage-collector tuning for a long-running server.

CPython's cyclic collector runs a full (oldest-generation) pass whenever enough
objects have survived younger passes. A server holding many live runs keeps a
great many objects alive, and each full pass walks all of them, so at Python's
default thresholds full passes take a large share of a busy server's CPU.
Reference counting frees almost everything agentd allocates; the collector only
has to find cycles, and it can do that far less often. At start-up the objects
that live as long as the process (modules, schemas, compiled queries) are
frozen out of collection and the thresholds raised; shutdown puts both back.

The youngest generation is also sized to the runs alive. A young pass walks
every object made since the last one; each run in flight holds a few hundred
(its request's and its stream's coroutines, the SDK's response, its state), so
at a fixed threshold a burst of runs sets off young pass after young pass, each
walking objects that are alive, not garbage, and finding nothing to free.
`objects_per_run` widens the threshold by that much per run in flight or being
created, so the young passes keep pace with garbage rather than with load.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


class YoungGeneration:
    """The youngest generation's threshold: the configured one plus `per_run` per run
    in flight or being created."""

    def __init__(self, threshold: tuple[int, int, int], per_run: int) -> None:
        self.threshold = threshold
        self.per_run = per_run
        self._live = 0

    def resize(self, live_runs: int) -> None:
        """Called as runs are created, start and end (`RunManager.on_load`)."""
        if live_runs == self._live or not self.per_run:
            return
        self._live = live_runs
        base, middle, oldest = self.threshold
        gc.set_threshold(base + self.per_run * live_runs, middle, oldest)


@contextmanager
def tuned_gc(
    threshold: tuple[int, int, int] | None, objects_per_run: int = 0
) -> Iterator[YoungGeneration | None]:
    """Freeze what exists now and apply `threshold` until the block ends; `None`
    leaves the collector as it is. Yields the `YoungGeneration` to resize as the
    runs in flight change (None when untuned)."""
    if threshold is None:
        yield None
        return
    previous = gc.get_threshold()
    gc.collect()  # freeze survivors only, not garbage that happens to exist now
    gc.freeze()
    gc.set_threshold(*threshold)
    try:
        yield YoungGeneration(threshold, objects_per_run)
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()
