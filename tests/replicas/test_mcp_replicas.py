"""MCP tool calls across real replicas: a crash resumed elsewhere sends a call again
only when its result was never stored, and with the same idempotency key, so the
server's side effect happens once; a run paused for confirmation on one replica
and continued on another calls the tool once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.mcp.conftest import HttpFake, log_lines
from tests.replicas.conftest import Cluster, Replica
from tests.replicas.test_replicas import (
    assert_gap_free,
    follow_to_end,
    kill_after_tool,
    start_background,
)
from tests.sse_client import SSEMessage, iter_sse

AGENT = {"id": "mcp-counter", "model": "test:tools", "tools": ["mcp:fake/record"]}


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[HttpFake]:
    server = HttpFake(tmp_path / "mcp-calls.log")
    server.env["MCP_FAKE_RECORD_SECONDS"] = "1.5"  # long enough to kill agentd mid-call
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def servers(fake: HttpFake) -> str:
    return json.dumps({"fake": {"url": fake.url, "timeout": 10}})


async def kill_mid_call(owner: Replica, watcher: Replica, run_id: str) -> list[SSEMessage]:
    """SIGKILL `owner` once the call has started, before its result is stored."""
    messages: list[SSEMessage] = []
    async with (
        watcher.client() as client,
        client.stream("GET", f"/v1/runs/{run_id}/events") as response,
    ):
        async for message in iter_sse(response):
            messages.append(message)
            if message.event == "ToolCallStarted":
                owner.kill()
                await owner.wait()
                break
    return messages


async def test_a_crash_mid_call_resumes_elsewhere_with_one_effect(
    pg_cluster: Cluster, fake: HttpFake
) -> None:
    a = await pg_cluster.add(MCP_SERVERS=servers(fake))
    b = await pg_cluster.add(MCP_SERVERS=servers(fake))
    async with a.client() as client:
        assert (await client.post("/v1/agents", json=AGENT)).status_code == 201
    run_id = await start_background(a, "mcp-counter", "go")
    before = await kill_mid_call(a, b, run_id)
    rest = await follow_to_end(b, run_id, before[-1].id or 0)
    assert_gap_free(before + rest)
    assert rest[-1].event == "RunCompleted"
    [record] = rest[-1].data["tools"]
    assert (record["tool_name"], record["result"]) == ("record", {"result": "recorded a"})
    key = f"{run_id}:{record['tool_call_id']}"
    assert log_lines(Path(fake.env["MCP_FAKE_LOG"]), "effect") == [key]
    calls = log_lines(Path(fake.env["MCP_FAKE_LOG"]), "call")
    assert calls and set(calls) == {key}  # sent again, if at all, with the same key


async def test_a_stored_result_is_never_fetched_again(
    sqlite_cluster: Cluster, fake: HttpFake
) -> None:
    a = await sqlite_cluster.add(MCP_SERVERS=servers(fake))
    async with a.client() as client:
        assert (await client.post("/v1/agents", json=AGENT)).status_code == 201
    run_id = await start_background(a, "mcp-counter", "go")
    before = await kill_after_tool(a, a, run_id)
    await a.start()  # the same database, a new process
    rest = await follow_to_end(a, run_id, before[-1].id or 0)
    assert_gap_free(before + rest)
    assert rest[-1].event == "RunCompleted"
    assert len(log_lines(Path(fake.env["MCP_FAKE_LOG"]), "call")) == 1


async def test_confirmed_on_another_replica_the_call_runs_once(
    pg_cluster: Cluster, fake: HttpFake
) -> None:
    a = await pg_cluster.add(MCP_SERVERS=servers(fake))
    b = await pg_cluster.add(MCP_SERVERS=servers(fake))
    confirmed = {"type": "mcp", "server": "fake", "tools": ["record"]}
    confirmed["requires_confirmation"] = True
    careful = {**AGENT, "id": "mcp-careful", "tools": [confirmed]}
    async with a.client() as client:
        assert (await client.post("/v1/agents", json=careful)).status_code == 201
        paused = (await client.post("/v1/agents/mcp-careful/runs", json={"input": "go"})).json()
    assert paused["status"] == "paused"
    call_id = paused["requirements"][0]["tool_call_id"]
    async with b.client() as client:
        answer = {"tools": [{"tool_call_id": call_id, "confirmed": True}]}
        done = (await client.post(f"/v1/runs/{paused['run_id']}/continue", json=answer)).json()
    assert done["status"] == "completed"
    assert done["tools"][0]["result"] == {"result": "recorded a"}
    key = f"{paused['run_id']}:{call_id}"
    log = Path(fake.env["MCP_FAKE_LOG"])
    assert (log_lines(log, "call"), log_lines(log, "effect")) == ([key], [key])
