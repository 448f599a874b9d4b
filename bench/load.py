"""The load generator: N runs at concurrency C over keep-alive connections.

C workers, each with its own connection (opened before the clock starts), take
run numbers from a shared counter until N runs were attempted. A run is timed
from the first byte sent to the last byte received; for streams, also to the
first content event. A failed run (transport error, timeout, HTTP error, a run
that did not complete) is counted by kind, with a sample of what came back.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.client import Connection, HttpError
from bench.workloads import Wire


@dataclass
class PassResult:
    runs: int
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    ttfc: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    def fail(self, kind: str, sample: bytes | str = b"") -> None:
        self.errors[kind] += 1
        if kind not in self.samples:
            text = sample.decode(errors="replace") if isinstance(sample, bytes) else sample
            self.samples[kind] = text[:400]

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        first = sorted(self.ttfc)
        return {
            "runs": self.runs,
            "ok": self.ok,
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "error_samples": self.samples,
            "wall_s": round(self.wall, 3),
            "runs_per_s": self.ok / self.wall if self.wall else 0.0,
            "p50_ms": percentile(lat, 0.50),
            "p90_ms": percentile(lat, 0.90),
            "p99_ms": percentile(lat, 0.99),
            "ttfc_p50_ms": percentile(first, 0.50),
            "ttfc_p99_ms": percentile(first, 0.99),
        }


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000


async def _connect(host: str, port: int, result: PassResult) -> Connection | None:
    try:
        return await Connection.open(host, port)
    except OSError as exc:
        result.fail(f"connect: {type(exc).__name__}", str(exc))
        return None


async def run_pass(
    host: str, port: int, wire: Wire, runs: int, concurrency: int, run_timeout: float
) -> PassResult:
    result = PassResult(runs)
    concurrency = min(concurrency, runs)
    opened = await asyncio.gather(
        *(Connection.open(host, port) for _ in range(concurrency)), return_exceptions=True
    )
    counter = iter(range(runs))

    async def worker(conn: Connection | None) -> None:
        for i in counter:
            if conn is None or conn.closed or conn.will_close:
                if conn is not None:
                    conn.close()
                conn = await _connect(host, port, result)
                if conn is None:
                    await asyncio.sleep(0.05)
                    continue
            start = time.perf_counter()
            try:
                reply = await conn.request(wire.make(i), wire.marker, run_timeout)
            except HttpError as exc:
                result.fail(str(exc))
                conn.close()
                conn = None
                continue
            problem = wire.check(reply)
            if problem is not None:
                result.fail(problem, reply.body[-400:])
                continue
            result.latencies.append(reply.done - start)
            if reply.first_marker is not None:
                result.ttfc.append(reply.first_marker - start)
            elif wire.marker:
                result.fail("stream without a content event", reply.body[:400])
                result.latencies.pop()
        if conn is not None:
            conn.close()

    # A connection that failed to open is retried by its worker (and counted then).
    conns = [None if isinstance(item, BaseException) else item for item in opened]
    started = time.perf_counter()
    await asyncio.gather(*(worker(conn) for conn in conns))
    result.wall = time.perf_counter() - started
    return result
