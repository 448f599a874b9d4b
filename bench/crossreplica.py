"""Cross-replica live delivery: how long after an event is made does a
subscriber on ANOTHER replica receive it?

Two agentd replicas on one PostgreSQL database. Runs start in the background on
replica A (streaming 50 tokens x 20 ms from the fake model); for each run a
subscriber follows `GET /v1/runs/{id}/events` on replica B and, for
comparison, another on replica A. For every event the latency is the time it
arrives minus its `created_at` (the moment the engine made it, before batching
and commit): an upper bound of the delay after commit.

    .venv/bin/python -m bench.crossreplica [--runs 40] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import procs
from bench.runner import control

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _created(data: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(data["created_at"]).replace("Z", "+00:00")).timestamp()


async def follow(
    base: str, run_id: str, out: list[float], arrivals: dict[tuple[str, int], float]
) -> None:
    async with (
        httpx.AsyncClient(base_url=base, timeout=60) as client,
        client.stream("GET", f"/v1/runs/{run_id}/events") as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                now = time.time()
                data = orjson.loads(line[5:])
                arrivals[(run_id, int(data["seq"]))] = now
                if data.get("event") != "RunCompleted":  # its created_at is the run's
                    out.append(now - _created(data))


Arrivals = dict[tuple[str, int], float]


async def one(
    a: str,
    b: str,
    client: httpx.AsyncClient,
    far: list[float],
    near: list[float],
    arrivals: tuple[Arrivals, Arrivals],
) -> None:
    response = await client.post(
        "/v1/agents/bench-x/runs",
        json={"input": "hello", "session_id": uuid.uuid4().hex, "background": True},
    )
    run_id = response.json()["run_id"]
    await asyncio.gather(follow(b, run_id, far, arrivals[0]), follow(a, run_id, near, arrivals[1]))


def summary(name: str, values: list[float]) -> str:
    values = sorted(values)

    def p(q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    return (
        f"| {name} | {len(values)} | {statistics.median(values) * 1000:.1f} | "
        f"{p(0.9):.1f} | {p(0.99):.1f} |"
    )


async def main(runs: int, concurrency: int) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="agentd-xr-"))
    fake, fake_port = procs.start_fake(tmp / "fake.log", None)
    db = f"agentd_bench_xr_{uuid.uuid4().hex[:8]}"
    await procs.create_database(PG_ADMIN, db)
    replicas: list[procs.Proc] = []
    try:
        fake_url = f"http://127.0.0.1:{fake_port}"
        control(fake_url, {"tokens": 50, "token_delay_ms": 20, "first_delay_ms": 0})
        env = {
            "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db}",
            "OPENAI_BASE_URL": f"{fake_url}/v1",
            "OPENAI_API_KEY": "x",
            "LOG_LEVEL": "warning",
            "SEED_DEMO_AGENT": "false",
        }
        ports = []
        for name in ("a", "b"):
            proc, port = procs.start_uvicorn(
                f"agentd-{name}",
                "app.main:app",
                env,
                tmp / f"{name}.log",
                None,
                "/readyz",
                loop=procs.AGENTD_LOOP,
            )
            replicas.append(proc)
            ports.append(port)
        a, b = (f"http://127.0.0.1:{port}" for port in ports)
        far: list[float] = []
        near: list[float] = []
        arrivals: tuple[Arrivals, Arrivals] = ({}, {})
        async with httpx.AsyncClient(base_url=a, timeout=60) as client:
            created = await client.post(
                "/v1/agents", json={"id": "bench-x", "model": "openai:fake"}
            )
            assert created.status_code == 201, created.text
            gate = asyncio.Semaphore(concurrency)

            async def limited() -> None:
                async with gate:
                    await one(a, b, client, far, near, arrivals)

            await asyncio.gather(*(limited() for _ in range(runs)))
        b_seen, a_seen = arrivals
        hop = [b_seen[key] - a_seen[key] for key in b_seen.keys() & a_seen.keys()]
        lines = [
            f"Cross-replica delivery: {runs} runs (50 tokens x 20 ms), {concurrency} at a time, "
            "ms. The owner's own subscriber gets each event right after its commit, so "
            "B - A is the delay after commit on the other replica.",
            "",
            "| measure | events | p50 | p90 | p99 |",
            "|---|---:|---:|---:|---:|",
            summary("B - A: other replica after the owner's subscriber", hop),
            summary("arrival on B - event created_at", far),
            summary("arrival on A - event created_at", near),
        ]
        return "\n".join(lines)
    finally:
        for proc in replicas:
            proc.stop()
        fake.stop()
        await procs.drop_database(PG_ADMIN, db)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    report = asyncio.run(main(args.runs, args.concurrency))
    print(report)
    out = Path(__file__).resolve().parent / "results" / "crossreplica.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(report + "\n")
    sys.exit(0)
