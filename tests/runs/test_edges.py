"""Hard edges of runs: the end of a finished run's stream, a session's state and
its active run, what a continue counts, long handoff targets, and integers
past 64 bits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.engine.context import handoff_tool_name
from app.tables import Run, Session
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.script import Reply, ToolCall
from tests.runs.conftest import SLOW, LiveServer, make_agent, wait_status
from tests.sse_client import collect

WORDS = " ".join(f"w{index}" for index in range(40))
CONFIRM = {
    "model": "test:tools",
    "tools": [{"name": "current_time", "requires_confirmation": True}],
}


async def test_a_stream_resumed_past_a_finished_run_answers_204(http: httpx.AsyncClient) -> None:
    await make_agent(http)
    run = (await http.post("/v1/agents/echo/runs", json={"input": "hi"})).json()
    async with http.stream("GET", f"/v1/runs/{run['run_id']}/events") as response:
        events = await collect(response)
    last = events[-1].id
    assert events[-1].event == "RunCompleted"
    for headers, params in (
        ({"Last-Event-ID": str(last)}, {}),
        ({"Last-Event-ID": str(last + 5)}, {}),
        ({}, {"after": str(last)}),
    ):
        response = await http.get(
            f"/v1/runs/{run['run_id']}/events", headers=headers, params=params
        )
        assert response.status_code == 204
        assert response.content == b""
    # Before the end there is still something to send.
    before = await http.get(
        f"/v1/runs/{run['run_id']}/events", headers={"Last-Event-ID": str(last - 1)}
    )
    assert before.status_code == 200
    assert "event: RunCompleted" in before.text


async def test_session_state_cannot_change_under_an_active_run(http: httpx.AsyncClient) -> None:
    await make_agent(http, model_settings=SLOW)
    run = (
        await http.post(
            "/v1/agents/echo/runs",
            json={
                "input": WORDS,
                "session_id": "st",
                "background": True,
                "session_state": {"a": 1},
            },
        )
    ).json()
    refused = await http.patch("/v1/sessions/st", json={"session_state": {"a": 2}})
    assert refused.status_code == 409
    assert refused.json()["code"] == "session_busy"
    assert refused.json()["active_run_id"] == run["run_id"]
    await wait_status(http, run["run_id"], {"completed"}, within=30)
    assert (await http.get("/v1/sessions/st")).json()["session_state"] == {"a": 1}
    changed = await http.patch("/v1/sessions/st", json={"session_state": {"a": 2}})
    assert changed.status_code == 200
    assert changed.json()["session_state"] == {"a": 2}


async def test_a_paused_run_continues_with_the_sessions_state_of_now(
    http: httpx.AsyncClient,
) -> None:
    await make_agent(http, **CONFIRM)
    paused = (
        await http.post(
            "/v1/agents/echo/runs",
            json={"input": "go", "session_id": "p", "session_state": {"step": 1}},
        )
    ).json()
    assert paused["status"] == "paused"
    changed = await http.patch("/v1/sessions/p", json={"session_state": {"step": 2}})
    assert changed.status_code == 200  # a paused run does not hold its session
    call = paused["requirements"][0]["tool_call_id"]
    done = await http.post(
        f"/v1/runs/{paused['run_id']}/continue",
        json={"tools": [{"tool_call_id": call, "confirmed": True}]},
    )
    assert done.json()["status"] == "completed"
    assert (await http.get("/v1/sessions/p")).json()["session_state"] == {"step": 2}


async def test_a_busy_continue_names_the_run_holding_the_session(
    http: httpx.AsyncClient,
) -> None:
    await make_agent(http, **CONFIRM)
    await make_agent(http, id="slow", model_settings=SLOW)
    paused = (
        await http.post("/v1/agents/echo/runs", json={"input": "go", "session_id": "b"})
    ).json()
    other = (
        await http.post(
            "/v1/agents/slow/runs", json={"input": WORDS, "session_id": "b", "background": True}
        )
    ).json()
    call = paused["requirements"][0]["tool_call_id"]
    busy = await http.post(
        f"/v1/runs/{paused['run_id']}/continue",
        json={"tools": [{"tool_call_id": call, "confirmed": True}]},
    )
    assert busy.status_code == 409
    assert busy.json()["code"] == "session_busy"
    assert busy.json()["active_run_id"] == other["run_id"]
    await http.post(f"/v1/runs/{other['run_id']}/cancel")


@pytest.fixture
def over_http_settings() -> dict[str, Any]:
    return {"max_run_attempts": 2}


async def test_continues_are_not_counted_as_worker_losses(
    over_http: LiveServer, fake: FakeOpenAIServer, db_engine: AsyncEngine
) -> None:
    """Three pauses on a run allowed two attempts: each continue is answered."""
    confirm = [{"name": "current_time", "requires_confirmation": True}]
    async with over_http.client() as http:
        await make_agent(http, id="gpt", model="openai:gpt-test", tools=confirm)
        fake.enqueue(
            *(Reply(tool_calls=[ToolCall("current_time", id=f"c{n}")]) for n in range(3)),
            Reply(text="done"),
        )
        run = (await http.post("/v1/agents/gpt/runs", json={"input": "go"})).json()
        for n in range(3):
            assert run["status"] == "paused", run
            run = (
                await http.post(
                    f"/v1/runs/{run['run_id']}/continue",
                    json={"tools": [{"tool_call_id": f"c{n}", "confirmed": True}]},
                )
            ).json()
        assert run["status"] == "completed", run
        assert run["content"] == "done"
    async with db_engine.connect() as conn:
        attempt = (await conn.execute(select(Run.attempt).where(Run.id == run["run_id"]))).scalar()
    assert attempt == 1  # started once by a worker, never lost


async def test_a_handoff_to_an_agent_with_a_long_id_has_a_short_tool_name(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    target = "t" * 60
    name = handoff_tool_name(target)
    assert len(name) == 64
    assert name.startswith("transfer_to_ttt")
    assert name == handoff_tool_name(target)  # the same every time
    assert handoff_tool_name("billing") == "transfer_to_billing"
    async with over_http.client() as http:
        await make_agent(http, id=target)
        await make_agent(http, id="front", model="openai:gpt-test", handoffs=[target])
        fake.enqueue(Reply(tool_calls=[ToolCall(name, id="h1")]))
        run = (await http.post("/v1/agents/front/runs", json={"input": "bonjour"})).json()
    assert run["status"] == "completed", run
    assert run["content"] == "bonjour"  # the echo agent answered after the handoff
    assert run["last_agent_id"] == target
    offered = [tool["function"]["name"] for tool in fake.requests[0].body["tools"]]
    assert offered == [name]


async def test_integers_past_64_bits_are_stored_as_they_are(db_engine: AsyncEngine) -> None:
    """JSON allows them and tools may return them: run state keeps them exact."""
    huge = 2**70 + 1
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with db_engine.begin() as conn:
        await conn.execute(
            insert(Session).values(
                tenant_id="default", id="big", state={"n": huge}, created_at=now, updated_at=now
            )
        )
        await conn.execute(
            insert(Run).values(
                id="r-big",
                tenant_id="default",
                agent_id="a",
                agent_version=1,
                session_id="big",
                status="completed",
                model="test:echo",
                input={},
                request={},
                metadata={},
                state={"tools": [{"result": huge}], "small": 2**62},
                created_at=now,
                updated_at=now,
            )
        )
    async with db_engine.connect() as conn:
        state = (await conn.execute(select(Run.state).where(Run.id == "r-big"))).scalar()
        session_state = (
            await conn.execute(select(Session.state).where(Session.id == "big"))
        ).scalar()
    assert state == {"tools": [{"result": huge}], "small": 2**62}
    assert session_state == {"n": huge}


async def test_a_nul_character_in_a_body_is_refused_before_anything_is_stored(
    http: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    """PostgreSQL's text and JSONB cannot hold it: 400, not a failed insert."""
    await make_agent(http)
    for body in (b'{"input": "a\\u0000b"}', b'{"input": "x", "metadata": {"\\u0000": 1}}'):
        response = await http.post(
            "/v1/agents/echo/runs", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "malformed_json"
    escaped = await http.post(
        "/v1/agents/echo/runs",
        content=b'{"input": "a\\\\u0000b"}',
        headers={"content-type": "application/json"},
    )
    assert escaped.json()["content"] == "a\\u0000b"  # the text, not the character
    async with db_engine.connect() as conn:
        assert len((await conn.execute(select(Run.id))).all()) == 1
