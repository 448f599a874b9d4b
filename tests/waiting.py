"""Waiting in tests for something another task makes true."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_for(predicate: Callable[[], object], within: float = 5.0) -> None:
    """Return once `predicate()` is true, polling every 2 ms; fail after `within` s."""
    for _ in range(max(1, round(within / 0.002))):
        if predicate():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("timed out")
