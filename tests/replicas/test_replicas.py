"""Several replicas on one PostgreSQL: any replica answers for any run, cancel
reaches the owner, work is claimed once, crashed workers' runs resume elsewhere
with tools never executed twice, and SIGTERM hands runs back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.replicas.conftest import Cluster, Replica
from tests.replicas.counting_tools import executions
from tests.runs.conftest import post_enqueued, wait_status
from tests.sse_client import SSEMessage, collect, iter_sse, names

SLOW_WORDS = " ".join(f"w{index}" for index in range(20))


async def create_agents(client: httpx.AsyncClient) -> None:
    for body in (
        {"id": "slow", "model": "test:echo", "model_settings": {"chunk_delay": 0.1}},
        {
            "id": "counter",
            "model": "test:tools",
            "tools": ["count_call"],
            "model_settings": {"chunk_delay": 0.4},
        },
        # Short, but long enough that two slots cannot absorb a burst of runs (a run
        # that ended before the next request arrived would leave nothing queued).
        {
            "id": "quick",
            "model": "test:tools",
            "tools": ["count_call"],
            "model_settings": {"chunk_delay": 0.05},
        },
    ):
        response = await client.post("/v1/agents", json=body)
        assert response.status_code == 201, response.text


async def start_background(replica: Replica, agent: str, text: str) -> str:
    async with replica.client() as client:
        response = await client.post(
            f"/v1/agents/{agent}/runs", json={"input": text, "background": True}
        )
        assert response.status_code == 202, response.text
        run_id: str = response.json()["run_id"]
        return run_id


def assert_gap_free(messages: list[SSEMessage]) -> None:
    assert [m.id for m in messages] == list(range(1, len(messages) + 1))


async def test_any_replica_streams_any_run(pg_cluster: Cluster) -> None:
    a = await pg_cluster.add()
    b = await pg_cluster.add()
    async with a.client() as client:
        await create_agents(client)
    run_id = await start_background(a, "slow", SLOW_WORDS)
    async with b.client() as client:
        async with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
            messages = await collect(response)
        assert_gap_free(messages)
        assert messages[-1].event == "RunCompleted"
        text = "".join(m.data["content"] for m in messages if m.event == "RunContent")
        assert text == SLOW_WORDS
        run = (await client.get(f"/v1/runs/{run_id}")).json()
        assert run["status"] == "completed"


async def test_an_agent_recreated_through_another_replica_is_run_anew(pg_cluster: Cluster) -> None:
    a = await pg_cluster.add()
    b = await pg_cluster.add()
    agent = {"id": "again", "model": "test:echo"}
    async with b.client() as client:
        assert (await client.post("/v1/agents", json=agent)).status_code == 201
        first = (await client.post("/v1/agents/again/runs", json={"input": "x"})).json()
        assert first["model"] == "test:echo"  # b has cached version 1
    async with a.client() as client:
        assert (await client.delete("/v1/agents/again")).status_code == 204
        recreated = {**agent, "model": "test:tools", "tools": ["current_time"]}
        assert (await client.post("/v1/agents", json=recreated)).status_code == 201
    async with b.client() as client:
        for _ in range(50):  # b hears it with the commit (NOTIFY), give it a moment
            second = (await client.post("/v1/agents/again/runs", json={"input": "y"})).json()
            if second["model"] == "test:tools":
                break
            await asyncio.sleep(0.05)
        assert second["agent_version"] == 1
        assert (second["model"], [t["tool_name"] for t in second["tools"]]) == (
            "test:tools",
            ["current_time"],
        )


async def test_cancel_through_another_replica(pg_cluster: Cluster) -> None:
    a = await pg_cluster.add()
    b = await pg_cluster.add()
    async with a.client() as client:
        await create_agents(client)
    run_id = await start_background(a, "slow", SLOW_WORDS * 3)
    async with b.client() as client:
        async with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
            seen: list[SSEMessage] = []
            async for message in iter_sse(response):
                seen.append(message)
                if message.event == "RunContent" and len(seen) == 3:
                    started = time.monotonic()
                    cancel = await client.post(f"/v1/runs/{run_id}/cancel")
                    assert cancel.status_code == 202
        ended = time.monotonic() - started
        assert seen[-1].event == "RunCancelled"
        assert ended < 1.5
        assert_gap_free(seen)
        assert (await client.get(f"/v1/runs/{run_id}")).json()["status"] == "cancelled"


async def test_queued_work_is_claimed_once_across_replicas(pg_cluster: Cluster) -> None:
    replicas = [await pg_cluster.add(MAX_CONCURRENT_RUNS="2") for _ in range(3)]
    async with replicas[0].client() as client:
        await create_agents(client)
        responses = await asyncio.gather(
            *(
                client.post("/v1/agents/quick/runs", json={"input": f"r{i}", "background": True})
                for i in range(24)
            )
        )
        run_ids = [r.json()["run_id"] for r in responses]
        assert any(r.json()["status"] == "queued" for r in responses)
        for run_id in run_ids:
            run = await wait_status(client, run_id, {"completed", "error"}, within=30)
            assert run["status"] == "completed", run
    done = executions(pg_cluster.count_file)
    keys = [key for _pid, key in done]
    assert len(keys) == 24
    assert len(set(keys)) == 24  # no tool call ran twice
    assert {key.split(":")[0] for key in keys} == set(run_ids)
    assert len({pid for pid, _key in done}) >= 2  # other replicas claimed work


async def test_a_run_queued_through_another_replica_starts_when_the_session_frees(
    pg_cluster: Cluster,
) -> None:
    """The session's run ends on one replica; the run queued behind it through another
    starts then, not at a sweep (a minute away here)."""
    owner = await pg_cluster.add(SWEEP_INTERVAL="60")
    other = await pg_cluster.add(SWEEP_INTERVAL="60")
    async with owner.client() as client:
        await create_agents(client)
        await asyncio.sleep(0.5)  # both replicas' start-up sweeps found nothing queued
        first = await client.post(
            "/v1/agents/slow/runs",
            json={"input": "a b c d e", "session_id": "shared", "background": True},
        )
        assert first.json()["status"] == "running"
    async with other.client() as client:
        queued = await post_enqueued(client, "slow", "shared", "after")
        assert queued.json()["status"] == "queued"
        run = await wait_status(client, queued.json()["run_id"], {"completed"}, within=10)
    assert run["content"] == "after"


async def kill_after_tool(owner: Replica, watcher: Replica, run_id: str) -> list[SSEMessage]:
    """Watch from `watcher`; SIGKILL `owner` once the tool's result is stored."""
    messages: list[SSEMessage] = []
    async with (
        watcher.client() as client,
        client.stream("GET", f"/v1/runs/{run_id}/events") as response,
    ):
        async for message in iter_sse(response):
            messages.append(message)
            if message.event == "ToolCallCompleted":
                owner.kill()
                await owner.wait()
                break
    return messages


async def follow_to_end(replica: Replica, run_id: str, after: int) -> list[SSEMessage]:
    async with replica.client(timeout=60) as client:
        headers = {"Last-Event-ID": str(after)}
        async with client.stream("GET", f"/v1/runs/{run_id}/events", headers=headers) as response:
            return await collect(response)


async def test_killed_worker_run_completes_elsewhere_tool_once(pg_cluster: Cluster) -> None:
    a = await pg_cluster.add()
    b = await pg_cluster.add()
    async with a.client() as client:
        await create_agents(client)
    run_id = await start_background(a, "counter", "go")
    before = await kill_after_tool(a, b, run_id)
    rest = await follow_to_end(b, run_id, before[-1].id or 0)
    everything = before + rest
    assert_gap_free(everything)
    assert everything[-1].event == "RunCompleted"
    assert {"event": "RunContinued", "reason": "resumed"}.items() <= next(
        m.data for m in rest if m.event == "RunContinued"
    ).items()
    assert len(executions(pg_cluster.count_file)) == 1
    async with b.client() as client:
        run = (await client.get(f"/v1/runs/{run_id}")).json()
    assert run["status"] == "completed"
    assert run["metrics"]["tool_calls"] == 1


async def test_sigterm_ends_streams_and_hands_runs_back(pg_cluster: Cluster) -> None:
    a = await pg_cluster.add(LEASE_SECONDS="30")
    b = await pg_cluster.add(LEASE_SECONDS="30")
    async with a.client() as client:
        await create_agents(client)
    run_id = await start_background(a, "slow", SLOW_WORDS)
    seen: list[SSEMessage] = []
    async with a.client() as client, client.stream("GET", f"/v1/runs/{run_id}/events") as stream:
        async for message in iter_sse(stream):
            seen.append(message)
            if len(seen) == 3:
                started = time.monotonic()
                a.terminate()
        # The stream ended (cleanly, without its terminal event) as the replica stopped.
    code = await a.wait()
    assert time.monotonic() - started < 6  # within the graceful-shutdown timeout
    assert code in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
    assert seen[-1].event not in {"RunCompleted", "RunCancelled", "RunError"}
    async with b.client() as client:
        # Handed back, not left to a 30 s lease: B resumes it at once.
        run = await wait_status(client, run_id, {"completed", "error"}, within=10)
        assert run["status"] == "completed"
    rest = await follow_to_end(b, run_id, seen[-1].id or 0)
    everything = seen + rest
    assert_gap_free(everything)
    assert everything[-1].event == "RunCompleted"
    assert "RunContinued" in names(rest)


async def test_sqlite_crash_then_restart_resumes(sqlite_cluster: Cluster) -> None:
    a = await sqlite_cluster.add()
    async with a.client() as client:
        await create_agents(client)
    run_id = await start_background(a, "counter", "go")
    before = await kill_after_tool(a, a, run_id)
    await a.start()  # the same database, a new process
    rest = await follow_to_end(a, run_id, before[-1].id or 0)
    everything = before + rest
    assert_gap_free(everything)
    assert everything[-1].event == "RunCompleted"
    assert len(executions(sqlite_cluster.count_file)) == 1


async def test_runs_that_keep_killing_workers_end_as_worker_lost(sqlite_cluster: Cluster) -> None:
    a = await sqlite_cluster.add(MAX_RUN_ATTEMPTS="1")
    async with a.client() as client:
        await create_agents(client)
    run_id = await start_background(a, "counter", "go")
    await kill_after_tool(a, a, run_id)
    await a.start()
    async with a.client() as client:
        run: dict[str, Any] = await wait_status(client, run_id, {"error", "completed"}, within=15)
    assert run["status"] == "error"
    assert run["error"]["code"] == "worker_lost"


async def test_sigterm_answers_a_waiting_blocking_request_with_503(pg_cluster: Cluster) -> None:
    """A blocking request still waiting when its replica stops is told to retry
    (503 with Retry-After and the run's id), and the run completes elsewhere."""
    a = await pg_cluster.add(LEASE_SECONDS="30")
    b = await pg_cluster.add(LEASE_SECONDS="30")
    async with a.client() as client:
        await create_agents(client)
        waiting = asyncio.create_task(
            client.post("/v1/agents/slow/runs", json={"input": SLOW_WORDS, "run_id": "blocked"})
        )
        async with b.client() as other:
            await wait_status(other, "blocked", {"running"}, within=10)
        a.terminate()
        answer = await waiting
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["code"] == "shutting_down"
    assert answer.json()["run_id"] == "blocked"
    await a.wait()
    async with b.client() as client:
        run = await wait_status(client, "blocked", {"completed", "error"}, within=20)
    assert run["status"] == "completed"
    assert run["content"] == SLOW_WORDS
