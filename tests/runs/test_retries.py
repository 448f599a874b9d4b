"""Requests a client sends again: a create with its own `run_id`, a cancel that
comes before its run, and creates and continues with an `Idempotency-Key`."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.tables import Run, RunEvent
from tests.runs.conftest import make_agent
from tests.sse_client import collect, names

CONFIRM = {
    "model": "test:tools",
    "tools": [{"name": "current_time", "requires_confirmation": True}],
}


async def count(engine: AsyncEngine, table: type[Run] | type[RunEvent]) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_create_sent_again_with_its_run_id_answers_that_run(
    http: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    await make_agent(http)
    body = {"input": "hello", "run_id": "order-42"}
    first = await http.post("/v1/agents/echo/runs", json=body)
    assert first.status_code == 200
    assert first.json()["run_id"] == "order-42"
    again = await http.post("/v1/agents/echo/runs", json=body)
    assert again.status_code == 200
    assert again.json() == first.json()
    async with http.stream(
        "POST", "/v1/agents/echo/runs", json={**body, "stream": True, "stream_events": True}
    ) as response:
        assert response.status_code == 409  # another body (it streams): another request
    other = await http.post("/v1/agents/echo/runs", json={**body, "input": "other"})
    assert other.status_code == 409
    assert other.json()["code"] == "run_exists"
    assert await count(db_engine, Run) == 1
    assert (await http.get("/v1/runs/order-42")).json()["content"] == "hello"


async def test_a_create_sent_again_under_another_span_of_the_callers_trace_is_the_same(
    http: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    await make_agent(http)
    body = {"input": "hello", "run_id": "traced-1"}
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    first = await http.post(
        "/v1/agents/echo/runs",
        json=body,
        headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
    )
    assert first.status_code == 200
    again = await http.post(
        "/v1/agents/echo/runs",
        json=body,
        headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"},
    )
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert await count(db_engine, Run) == 1


async def test_a_streamed_create_sent_again_streams_from_the_start(
    http: httpx.AsyncClient,
) -> None:
    await make_agent(http)
    body = {"input": "hello", "run_id": "s-1", "stream": True, "stream_events": True}
    async with http.stream("POST", "/v1/agents/echo/runs", json=body) as response:
        first = await collect(response)
    async with http.stream("POST", "/v1/agents/echo/runs", json=body) as response:
        assert response.status_code == 200
        second = await collect(response)
    assert [m.id for m in second] == [m.id for m in first] == list(range(1, len(first) + 1))
    assert names(second)[0] == "RunStarted" and names(second)[-1] == "RunCompleted"


async def test_a_cancel_that_comes_first_cancels_the_run_created_after_it(
    http: httpx.AsyncClient,
) -> None:
    await make_agent(http)
    early = await http.post("/v1/runs/later-1/cancel")
    assert early.status_code == 404
    assert early.json()["code"] == "run_not_found"
    run = (
        await http.post("/v1/agents/echo/runs", json={"input": "hi", "run_id": "later-1"})
    ).json()
    assert run["status"] == "cancelled"
    async with http.stream("GET", "/v1/runs/later-1/events") as response:
        events = await collect(response)
    assert names(events)[-1] == "RunCancelled"
    assert "RunContent" not in names(events)
    # Used up: another run id is not affected, and the cancel is not kept twice.
    other = (await http.post("/v1/agents/echo/runs", json={"input": "hi", "run_id": "x-2"})).json()
    assert other["status"] == "completed"


async def test_an_idempotent_create_starts_one_run(
    http: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    await make_agent(http)
    headers = {"Idempotency-Key": "key-1"}
    body = {"input": "once", "session_id": "idem"}
    answers = await asyncio.gather(
        *(http.post("/v1/agents/echo/runs", json=body, headers=headers) for _ in range(4))
    )
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.json()["run_id"] for answer in answers}) == 1
    assert await count(db_engine, Run) == 1
    reused = await http.post(
        "/v1/agents/echo/runs", json={"input": "twice", "session_id": "idem"}, headers=headers
    )
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert await count(db_engine, Run) == 1
    background = await http.post(
        "/v1/agents/echo/runs",
        json={"input": "bg", "background": True},
        headers={"Idempotency-Key": "key-2"},
    )
    retried = await http.post(
        "/v1/agents/echo/runs",
        json={"input": "bg", "background": True},
        headers={"Idempotency-Key": "key-2"},
    )
    assert background.status_code == retried.status_code == 202
    assert background.json()["run_id"] == retried.json()["run_id"]
    assert await count(db_engine, Run) == 2


async def test_an_idempotent_continue_continues_once(
    http: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    await make_agent(http, **CONFIRM)
    paused = (await http.post("/v1/agents/echo/runs", json={"input": "go"})).json()
    call = paused["requirements"][0]["tool_call_id"]
    decisions = {"tools": [{"tool_call_id": call, "confirmed": True}]}
    url = f"/v1/runs/{paused['run_id']}/continue"
    headers = {"Idempotency-Key": "continue-1"}
    done = await http.post(url, json=decisions, headers=headers)
    assert done.status_code == 200
    assert done.json()["status"] == "completed"
    events = await count(db_engine, RunEvent)
    again = await http.post(url, json=decisions, headers=headers)
    assert again.status_code == 200
    assert again.json() == done.json()
    assert await count(db_engine, RunEvent) == events  # nothing ran again
    async with http.stream("POST", url, json={**decisions, "stream": True}, headers=headers) as r:
        assert r.status_code == 422  # the same key, another request
    unkeyed = await http.post(url, json=decisions)
    assert unkeyed.status_code == 409
    assert unkeyed.json()["code"] == "run_not_paused"


async def test_a_bad_idempotency_key_is_422_and_stores_nothing(
    http: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    await make_agent(http)
    for key in ("", "k" * 256):
        response = await http.post(
            "/v1/agents/echo/runs", json={"input": "x"}, headers={"Idempotency-Key": key}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    bad_id = await http.post("/v1/agents/echo/runs", json={"input": "x", "run_id": "-bad"})
    assert bad_id.status_code == 422
    assert await count(db_engine, Run) == 0
