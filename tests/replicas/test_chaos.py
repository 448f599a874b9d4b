"""Chaos: three replicas on one PostgreSQL, runs with tool calls and human pauses
arriving steadily, and one replica SIGKILLed and restarted every few seconds.

Clients behave as a careful client does: they create and continue with an
Idempotency-Key, follow a run's events from any replica and re-attach with
Last-Event-ID wherever a replica died under them. In the end every run is
terminal, every tool call ran at most once and every one a run reports
completed ran exactly once, every run's seqs are gap-free, and every client saw
each event once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select

from app.db import create_engine
from app.tables import RunEvent
from tests.replicas.conftest import Cluster, Replica
from tests.replicas.counting_tools import executions
from tests.sse_client import SSEMessage, iter_sse

RUNS = 120  # arriving over about ARRIVALS seconds
ARRIVALS = 30.0
KILL_EVERY = (3.0, 5.0)  # seconds between kills, drawn at random
FINISH_WITHIN = 150.0
TERMINAL = {"RunCompleted", "RunError", "RunCancelled"}
AGENTS = (
    {"id": "tooler", "model": "test:tools", "tools": ["count_call"]},
    {
        "id": "asker",
        "model": "test:tools",
        "tools": [{"name": "count_call", "requires_confirmation": True}],
    },
)


@dataclass
class Followed:
    run_id: str
    agent_id: str
    seen: list[SSEMessage] = field(default_factory=list)
    reattached: int = 0


class Client:
    """Requests to any live replica, again elsewhere when one dies under them."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def replica(self) -> Replica:
        live = [r for r in self.cluster.replicas if r.process and r.process.returncode is None]
        return random.choice(live or self.cluster.replicas)

    async def post(self, path: str, body: dict[str, object], key: str) -> httpx.Response:
        deadline = time.monotonic() + FINISH_WITHIN
        while time.monotonic() < deadline:
            try:
                async with self.replica().client(timeout=20) as client:
                    response = await client.post(path, json=body, headers={"Idempotency-Key": key})
                if response.status_code < 500:
                    return response
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"{path}: no replica answered")

    async def follow(self, run: Followed) -> None:
        """Follow to the run's end, answering its pause, re-attaching as needed."""
        deadline = time.monotonic() + FINISH_WITHIN
        while time.monotonic() < deadline:
            after = run.seen[-1].id if run.seen else 0
            try:
                async with (
                    self.replica().client(timeout=30) as client,
                    client.stream(
                        "GET",
                        f"/v1/runs/{run.run_id}/events",
                        headers={"Last-Event-ID": str(after)},
                    ) as response,
                ):
                    if response.status_code == 204:
                        return
                    async for message in iter_sse(response):
                        run.seen.append(message)
                        if message.event in TERMINAL:
                            return
                        if message.event == "RunPaused":
                            await self.answer(run, message)
            except httpx.TransportError:
                pass
            run.reattached += 1
            await asyncio.sleep(0.1)
        raise AssertionError(f"run {run.run_id} did not end")

    async def answer(self, run: Followed, paused: SSEMessage) -> None:
        decisions = [
            {"tool_call_id": requirement["tool_call_id"], "confirmed": True}
            for requirement in paused.data["requirements"]
        ]
        response = await self.post(
            f"/v1/runs/{run.run_id}/continue",
            {"tools": decisions, "background": True},
            key=f"continue-{run.run_id}-{paused.id}",
        )
        assert response.status_code == 202, response.text


async def run_one(client: Client, index: int) -> Followed:
    agent = AGENTS[index % 2]["id"]
    response = await client.post(
        f"/v1/agents/{agent}/runs",
        {"input": f"run {index}", "background": True},
        key=f"create-{index}",
    )
    assert response.status_code == 202, response.text
    run = Followed(response.json()["run_id"], str(agent))
    await client.follow(run)
    return run


async def chaos(cluster: Cluster, stop: asyncio.Event) -> int:
    """SIGKILL a random replica and start it again, until `stop`; returns the kills."""
    kills = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), random.uniform(*KILL_EVERY))
        if stop.is_set():
            break
        victim = random.choice(cluster.replicas)
        if victim.process is None or victim.process.returncode is not None:
            continue
        victim.kill()
        await victim.wait()
        kills += 1
        await victim.start()
    return kills


async def test_replicas_killed_under_steady_load_lose_nothing(pg_cluster: Cluster) -> None:
    random.seed(7)
    for _ in range(3):
        await pg_cluster.add(LEASE_SECONDS="2", SWEEP_INTERVAL="0.5", MAX_RUN_ATTEMPTS="10")
    async with pg_cluster.replicas[0].client() as http:
        for agent in AGENTS:
            assert (await http.post("/v1/agents", json=agent)).status_code == 201
    client = Client(pg_cluster)
    stop = asyncio.Event()
    killer = asyncio.create_task(chaos(pg_cluster, stop))
    tasks = []
    for index in range(RUNS):
        tasks.append(asyncio.create_task(run_one(client, index)))
        await asyncio.sleep(ARRIVALS / RUNS)
    runs = await asyncio.gather(*tasks)
    stop.set()
    kills = await killer
    assert kills >= 3

    for run in runs:
        ids = [message.id for message in run.seen]
        assert ids == list(range(1, len(ids) + 1)), (run.run_id, ids)  # once each, in order
        assert run.seen[-1].event in TERMINAL
        assert run.seen[-1].event == "RunCompleted", run.seen[-1].data
    async with pg_cluster.replicas[0].client() as http:
        outputs = [(await http.get(f"/v1/runs/{run.run_id}")).json() for run in runs]
    assert {output["status"] for output in outputs} == {"completed"}

    # Every run's stored seqs are gap-free.
    engine = create_engine(pg_cluster.env["DATABASE_URL"])
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(RunEvent.run_id, RunEvent.seq))).all()
    finally:
        await engine.dispose()
    stored: dict[str, list[int]] = {}
    for run_id, seq in rows:
        stored.setdefault(run_id, []).append(seq)
    for run in runs:
        assert sorted(stored[run.run_id]) == list(range(1, len(stored[run.run_id]) + 1))

    # Every tool call took effect exactly once. A worker killed between a tool's
    # execution and the checkpoint of its result (a commit's time) has it executed
    # again on resume with the same idempotency key, which is how a tool with side
    # effects keeps them once: so effects are counted by key, and repeats are rare.
    executed = Counter(key for _, key in executions(pg_cluster.count_file))
    completed = {
        f"{output['run_id']}:{tool['tool_call_id']}"
        for output in outputs
        for tool in output["tools"]
        if tool["status"] == "completed"
    }
    assert len(completed) == RUNS  # one tool call per run
    assert set(executed) == completed
    assert sum(executed.values()) - len(executed) <= kills
