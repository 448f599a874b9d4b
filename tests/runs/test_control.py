"""Cancel, continue (human in the loop), restarts, and one run per session."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import make_settings
from tests.runs.conftest import (
    SLOW,
    LiveServer,
    make_agent,
    post_enqueued,
    serving,
    statements,
    wait_status,
)
from tests.sse_client import collect, iter_sse, names

WORDS = " ".join(f"w{index}" for index in range(40))


async def test_cancel_mid_model_stream_is_prompt(http: httpx.AsyncClient) -> None:
    await make_agent(http, model_settings={"chunk_delay": 0.2})
    run_id = None
    async with http.stream(
        "POST", "/v1/agents/echo/runs", json={"input": WORDS, "stream": True, "stream_events": True}
    ) as response:
        messages = []
        async for message in iter_sse(response):
            messages.append(message)
            run_id = message.data["run_id"]
            if message.event == "RunContent":
                started = time.monotonic()
                cancel = await http.post(f"/v1/runs/{run_id}/cancel")
                assert cancel.status_code == 202
                assert cancel.json() == {
                    "run_id": run_id,
                    "status": "cancelled",
                    "session_id": message.data["session_id"],
                }
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert messages[-1].event == "RunCancelled"
    assert [m.id for m in messages] == list(range(1, len(messages) + 1))
    run = (await http.get(f"/v1/runs/{run_id}")).json()
    assert run["status"] == "cancelled"
    # The run keeps the part of the answer its client saw.
    seen = "".join(m.data["content"] for m in messages if m.event == "RunContent")
    assert seen and run["content"] == seen
    again = await http.post(f"/v1/runs/{run_id}/cancel")
    assert again.status_code == 202
    assert again.json()["status"] == "cancelled"
    async with http.stream("GET", f"/v1/runs/{run_id}/events") as response:
        replay = await collect(response)
    assert names(replay) == names(messages)


async def test_a_cancel_racing_the_end_of_a_run_tells_the_truth(http: httpx.AsyncClient) -> None:
    """Cancels sent as runs finish: a 202 means the run ends cancelled; a run
    that completed first answers 409 run_not_active with run_status completed."""
    # Runs of about 0.2 s (four words, 50 ms apart), cancelled 0 to 0.24 s after
    # their 202: early cancels win, late ones lose, some land at the end.
    await make_agent(http, model_settings={"chunk_delay": 0.05})

    # A few races at a time: with all fifty at once, a run's 202 could come later
    # than its end on SQLite (creates wait for the write lock), and no cancel would race.
    at_once = asyncio.Semaphore(5)

    async def race(index: int) -> tuple[int, str, str]:
        async with at_once:
            created = await http.post(
                "/v1/agents/echo/runs", json={"input": "one two three four", "background": True}
            )
            run_id = created.json()["run_id"]
            await asyncio.sleep(0.01 * (index % 25))
            cancel = await http.post(f"/v1/runs/{run_id}/cancel")
        final = (await wait_status(http, run_id, {"completed", "cancelled"}))["status"]
        detail = cancel.json().get("status") if cancel.status_code == 202 else cancel.json()
        return cancel.status_code, final, str(detail)

    outcomes = await asyncio.gather(*(race(index) for index in range(50)))
    for status, final, detail in outcomes:
        if status == 202:
            assert final == "cancelled", (status, final, detail)
        else:
            assert status == 409 and final == "completed", (status, final, detail)
            assert "run_not_active" in detail and "completed" in detail
    assert any(status == 202 for status, _, _ in outcomes)
    assert any(status == 409 for status, _, _ in outcomes)


async def test_cancel_finished_run_is_409(http: httpx.AsyncClient) -> None:
    await make_agent(http)
    run = (await http.post("/v1/agents/echo/runs", json={"input": "x"})).json()
    response = await http.post(f"/v1/runs/{run['run_id']}/cancel")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "run_not_active"
    assert response.json()["status"] == 409  # RFC 9457: the HTTP status
    assert response.json()["run_status"] == "completed"
    missing = await http.post("/v1/runs/nope/cancel")
    assert missing.status_code == 404
    assert missing.json()["code"] == "run_not_found"


CONFIRM_AGENT = {
    "model": "test:tools",
    "tools": [
        {"name": "current_time", "requires_confirmation": True},
        {"type": "client", "name": "get_location", "description": "Where the user is."},
    ],
}


async def test_pause_then_continue(http: httpx.AsyncClient) -> None:
    await make_agent(http, **CONFIRM_AGENT)
    paused = (await http.post("/v1/agents/echo/runs", json={"input": "go"})).json()
    assert paused["status"] == "paused"
    kinds = {r["tool_name"]: r["kind"] for r in paused["requirements"]}
    assert kinds == {"current_time": "confirmation", "get_location": "external_execution"}
    ids = {r["tool_name"]: r["tool_call_id"] for r in paused["requirements"]}
    run_id = paused["run_id"]
    not_all = await http.post(
        f"/v1/runs/{run_id}/continue",
        json={"tools": [{"tool_call_id": ids["current_time"], "confirmed": True}]},
    )
    assert not_all.status_code == 422
    assert not_all.json()["code"] == "validation_error"
    assert (await http.get(f"/v1/runs/{run_id}")).json()["status"] == "paused"
    decisions = {
        "tools": [
            {"tool_call_id": ids["current_time"], "confirmed": True},
            {"tool_call_id": ids["get_location"], "result": "Berlin"},
        ],
        "stream": True,
        "stream_events": True,
    }
    async with http.stream("POST", f"/v1/runs/{run_id}/continue", json=decisions) as response:
        assert response.status_code == 200
        messages = await collect(response)
    assert messages[0].event == "RunContinued"
    assert messages[0].id == paused_last_seq(paused, messages)
    assert messages[-1].event == "RunCompleted"
    final = messages[-1].data
    assert final["status"] == "completed"
    results = {t["tool_name"]: t for t in final["tools"]}
    assert results["get_location"]["result"] == "Berlin"
    assert results["current_time"]["status"] == "completed"
    again = await http.post(f"/v1/runs/{run_id}/continue", json={"tools": []})
    assert again.status_code == 409
    assert again.json()["code"] == "run_not_paused"
    assert again.json()["status"] == 409
    assert again.json()["run_status"] == "completed"
    async with http.stream("GET", f"/v1/runs/{run_id}/events") as response:
        replay = await collect(response)
    assert [m.id for m in replay] == list(range(1, len(replay) + 1))
    assert "RunPaused" in names(replay) and replay[-1].event == "RunCompleted"


def paused_last_seq(paused: dict[str, object], messages: list[object]) -> int:
    """The first event of a continuation follows the RunPaused event."""
    first = messages[0]
    return int(first.data["seq"])  # type: ignore[attr-defined]


async def test_rejected_confirmation_tells_the_model(http: httpx.AsyncClient) -> None:
    await make_agent(
        http, model="test:tools", tools=[{"name": "current_time", "requires_confirmation": True}]
    )
    paused = (await http.post("/v1/agents/echo/runs", json={"input": "go"})).json()
    call_id = paused["requirements"][0]["tool_call_id"]
    done = await http.post(
        f"/v1/runs/{paused['run_id']}/continue",
        json={"tools": [{"tool_call_id": call_id, "confirmed": False, "note": "not now"}]},
    )
    run = done.json()
    assert run["status"] == "completed"
    tool = run["tools"][0]
    assert tool["status"] == "rejected"
    tool_messages = [m for m in run["messages"] if m["role"] == "tool"]
    assert "not now" in tool_messages[0]["content"]


async def test_concurrent_continues_execute_once(http: httpx.AsyncClient) -> None:
    await make_agent(
        http, model="test:tools", tools=[{"name": "current_time", "requires_confirmation": True}]
    )
    paused = (await http.post("/v1/agents/echo/runs", json={"input": "go"})).json()
    call_id = paused["requirements"][0]["tool_call_id"]
    body = {"tools": [{"tool_call_id": call_id, "confirmed": True}]}
    answers = await asyncio.gather(
        *(http.post(f"/v1/runs/{paused['run_id']}/continue", json=body) for _ in range(4))
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409, 409, 409]
    run = (await http.get(f"/v1/runs/{paused['run_id']}")).json()
    assert run["status"] == "completed"
    assert run["metrics"]["tool_calls"] == 1


async def test_continue_after_restart(live: LiveServer) -> None:
    async with live.client() as client:
        await make_agent(client, **CONFIRM_AGENT)
        paused = (await client.post("/v1/agents/echo/runs", json={"input": "go"})).json()
    await live.restart()
    async with live.client() as client:
        ids = {r["tool_name"]: r["tool_call_id"] for r in paused["requirements"]}
        done = await client.post(
            f"/v1/runs/{paused['run_id']}/continue",
            json={
                "tools": [
                    {"tool_call_id": ids["current_time"], "confirmed": True},
                    {"tool_call_id": ids["get_location"], "result": "Paris"},
                ]
            },
        )
        assert done.status_code == 200
        assert done.json()["status"] == "completed"


async def test_cancel_paused_run(http: httpx.AsyncClient) -> None:
    await make_agent(http, **CONFIRM_AGENT)
    paused = (await http.post("/v1/agents/echo/runs", json={"input": "go"})).json()
    response = await http.post(f"/v1/runs/{paused['run_id']}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    async with http.stream("GET", f"/v1/runs/{paused['run_id']}/events") as stream:
        replay = await collect(stream)
    assert names(replay)[-2:] == ["RunPaused", "RunCancelled"]


async def test_session_busy_rejects(http: httpx.AsyncClient) -> None:
    await make_agent(http, model_settings=SLOW)
    first = (
        await http.post(
            "/v1/agents/echo/runs", json={"input": WORDS, "session_id": "busy", "background": True}
        )
    ).json()
    second = await http.post("/v1/agents/echo/runs", json={"input": "x", "session_id": "busy"})
    assert second.status_code == 409
    assert second.json()["code"] == "session_busy"
    assert second.json()["active_run_id"] == first["run_id"]
    runs = (await http.get("/v1/runs", params={"session_id": "busy"})).json()["data"]
    assert [r["run_id"] for r in runs] == [first["run_id"]]
    await http.post(f"/v1/runs/{first['run_id']}/cancel")


async def test_session_enqueue_runs_in_order(http: httpx.AsyncClient) -> None:
    await make_agent(http, model_settings={"chunk_delay": 0.02})
    first = (
        await http.post(
            "/v1/agents/echo/runs", json={"input": "a b c d", "session_id": "q", "background": True}
        )
    ).json()
    queued = await post_enqueued(http, "echo", "q", "second")
    assert queued.status_code == 202
    assert queued.json()["status"] == "queued"
    second = await wait_status(http, queued.json()["run_id"], {"completed"})
    one = (await http.get(f"/v1/runs/{first['run_id']}")).json()
    assert one["status"] == "completed"
    assert second["content"] == "second"
    assert one["updated_at"] <= second["updated_at"]


async def test_session_interrupt_cancels_the_active_run(http: httpx.AsyncClient) -> None:
    await make_agent(http, model_settings=SLOW)
    first = (
        await http.post(
            "/v1/agents/echo/runs", json={"input": WORDS, "session_id": "i", "background": True}
        )
    ).json()
    second = await http.post(
        "/v1/agents/echo/runs",
        json={"input": "now", "session_id": "i", "multitask_strategy": "interrupt"},
    )
    assert second.status_code == 200
    assert second.json()["status"] == "completed"
    assert second.json()["content"] == "now"
    assert (await http.get(f"/v1/runs/{first['run_id']}")).json()["status"] == "cancelled"


CLAIM_SQL = "FROM runs JOIN sessions ON sessions.tenant_id = runs.tenant_id"


@pytest.fixture
async def unswept(database_url: str, db_engine: object) -> AsyncIterator[LiveServer]:
    """A server whose periodic sweep never comes during a test (it runs at start)."""
    async with serving(
        make_settings(database_url, sweep_interval=60, max_concurrent_runs=2)
    ) as server:
        yield server


def claims(seen: list[str]) -> list[str]:
    return [statement for statement in seen if CLAIM_SQL in statement]


async def test_finished_runs_look_for_queued_work_only_when_some_was_queued(
    unswept: LiveServer,
) -> None:
    async with unswept.client() as http:
        await make_agent(http, model_settings={"chunk_delay": 0.02})
        await asyncio.sleep(0.3)  # the start-up sweep (and the listener's first notice) are done
        assert unswept.app is not None
        seen = statements(unswept.app)
        for index in range(5):
            run = await http.post("/v1/agents/echo/runs", json={"input": f"r{index}"})
            assert run.json()["status"] == "completed"
        await asyncio.sleep(0.1)
        assert claims(seen) == []  # nothing was queued: five runs ended without a claim

        first = (
            await http.post(
                "/v1/agents/echo/runs",
                json={"input": "a b c d", "session_id": "q", "background": True},
            )
        ).json()
        queued = await post_enqueued(http, "echo", "q", "next")
        assert queued.json()["status"] == "queued"
        # started when the session's run ends, not at the sweep a minute later
        second = await wait_status(http, queued.json()["run_id"], {"completed"}, within=5)
        assert second["content"] == "next"
        assert (await http.get(f"/v1/runs/{first['run_id']}")).json()["status"] == "completed"
        assert claims(seen)  # this time the end of the first run looked


async def test_a_run_queued_for_capacity_starts_when_a_slot_frees(unswept: LiveServer) -> None:
    async with unswept.client() as http:
        await make_agent(http, model_settings={"chunk_delay": 0.05})
        busy = [
            (
                await http.post(
                    "/v1/agents/echo/runs", json={"input": "a b c d e f", "background": True}
                )
            ).json()
            for _ in range(2)
        ]
        assert [run["status"] for run in busy] == ["running", "running"]
        waiting = (
            await http.post("/v1/agents/echo/runs", json={"input": "third", "background": True})
        ).json()
        assert waiting["status"] == "queued"
        third = await wait_status(http, waiting["run_id"], {"completed"}, within=5)
        assert third["content"] == "third"
