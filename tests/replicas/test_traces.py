"""A run resumed after its worker was killed stays in its trace (on another
replica with PostgreSQL, after a restart with SQLite), and the replicas' log
lines are JSON carrying the run's ids and its trace's."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fakes.otlp_receiver import OTLPReceiver, ReceivedSpan, is_root
from tests.replicas.conftest import Cluster, Replica
from tests.replicas.test_replicas import assert_gap_free, follow_to_end, kill_after_tool
from tests.tracing.conftest import otel_environment

TRACE = "5b8efff798038103d269b633813fc60c"
CALLER_SPAN = "eee19b7ec3c1b174"


@pytest.fixture
async def receiver() -> AsyncIterator[OTLPReceiver]:
    async with OTLPReceiver() as started:
        yield started


def traced_env(receiver: OTLPReceiver) -> dict[str, str]:
    return {
        **otel_environment(receiver),
        "LOG_FORMAT": "json",
        "TOOL_MODULES": "tests.replicas.logging_tools",
    }


async def start_noting_run(replica: Replica) -> str:
    async with replica.client() as client:
        agent = {
            "id": "noter",
            "model": "test:tools",
            "tools": ["note"],
            "model_settings": {"chunk_delay": 0.4},
        }
        assert (await client.post("/v1/agents", json=agent)).status_code == 201
        response = await client.post(
            "/v1/agents/noter/runs",
            json={"input": "go", "background": True, "session_id": "s-crash"},
            headers={"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"},
        )
        assert response.status_code == 202, response.text
        run_id: str = response.json()["run_id"]
        return run_id


def json_lines(replica: Replica) -> list[dict[str, Any]]:
    """Every line of the replica's log, each a JSON object."""
    return [json.loads(line) for line in replica.log.read_text().splitlines() if line.strip()]


async def check_resumed_trace(
    receiver: OTLPReceiver, run_id: str, killed: Replica
) -> list[ReceivedSpan]:
    def resumed(spans: list[ReceivedSpan]) -> bool:
        return any(
            span.run_id == run_id
            and is_root(span)
            and span.attributes["agentd.run.execution"] == "resume"
            for span in spans
        )

    await receiver.wait_for(resumed, within=30)
    spans = receiver.of_run(run_id)
    # The killed worker never ended its execution's root; whatever of it was exported
    # before the kill is in the same trace as what the resumed execution exported.
    assert {span.trace_id for span in spans} == {TRACE}
    root = next(
        span
        for span in spans
        if is_root(span) and span.attributes["agentd.run.execution"] == "resume"
    )
    assert root.parent_span_id == CALLER_SPAN
    assert root.attributes["agentd.run.status"] == "completed"
    agent = next(
        s for s in spans if s.name == "invoke_agent noter" and s.parent_span_id == root.span_id
    )
    answer = [s for s in spans if s.name == "chat tools" and s.parent_span_id == agent.span_id]
    assert len(answer) == 1  # the resumed execution made the last model call only
    assert not [
        s for s in spans if s.name == "execute_tool note" and s.parent_span_id == agent.span_id
    ]

    lines = json_lines(killed)
    noted = [line for line in lines if line["message"].startswith("note: ")]
    assert len(noted) == 1, lines
    line = noted[0]
    assert line["run_id"] == run_id
    assert (line["session_id"], line["agent_id"], line["trace_id"]) == ("s-crash", "noter", TRACE)
    assert re.fullmatch(r"[0-9a-f]{16}", line["span_id"])
    assert line["level"] == "WARNING" and line["logger"] == "tests.note"
    return spans


async def test_a_run_resumed_on_another_replica_keeps_its_trace(
    pg_cluster: Cluster, receiver: OTLPReceiver
) -> None:
    env = traced_env(receiver)
    a = await pg_cluster.add(**env)
    b = await pg_cluster.add(**env)
    run_id = await start_noting_run(a)
    before = await kill_after_tool(a, b, run_id)
    rest = await follow_to_end(b, run_id, before[-1].id or 0)
    assert_gap_free(before + rest)
    assert rest[-1].event == "RunCompleted"
    await check_resumed_trace(receiver, run_id, a)
    assert all(isinstance(line, dict) for line in json_lines(b))


async def test_a_run_resumed_after_a_restart_keeps_its_trace(
    sqlite_cluster: Cluster, receiver: OTLPReceiver
) -> None:
    a = await sqlite_cluster.add(**traced_env(receiver))
    run_id = await start_noting_run(a)
    before = await kill_after_tool(a, a, run_id)
    await a.start()  # its log goes on in the same file
    rest = await follow_to_end(a, run_id, before[-1].id or 0)
    assert rest[-1].event == "RunCompleted"
    await check_resumed_trace(receiver, run_id, a)
