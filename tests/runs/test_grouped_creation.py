"""Runs created at the same moment are stored together (`RunCreations`): one
transaction and one commit for the group (on PostgreSQL one round trip), each
run with its own outcome; a group that fails is stored run by run."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from app.runs import records
from app.runs.grouping import RunCreations
from app.runs.repository import ID_TAKEN, Held, Outcome
from app.runs.schemas import RunCreate, RunExtras
from app.tables import Run, RunCancel, Session
from tests.conftest import make_settings
from tests.runs.conftest import make_agent, wait_status
from tests.sse_client import collect, names

pytestmark = pytest.mark.usefixtures("as_operator")


def creations_of(app: FastAPI) -> RunCreations:
    creations: RunCreations = app.state.run_service.creations
    return creations


async def test_concurrent_runs_are_stored_in_fewer_round_trips(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await make_agent(client)
    await client.post("/v1/agents/echo/runs", json={"input": "known"})  # the agent read once
    creations = creations_of(app)
    before = creations.groups
    texts = [f"run {i}" for i in range(24)]
    responses = await asyncio.gather(
        *(client.post("/v1/agents/echo/runs", json={"input": text}) for text in texts)
    )
    assert [r.status_code for r in responses] == [200] * len(texts)
    assert [r.json()["content"] for r in responses] == texts
    assert len({r.json()["session_id"] for r in responses}) == len(texts)
    assert 1 <= creations.groups - before < len(texts)


async def test_runs_with_client_chosen_ids_are_stored_in_groups(
    app: FastAPI, client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    """A client-chosen run id takes the grouped path too (each create below, sent
    alone, is a group of one): a cancel for the id that came before the create
    still ends that run cancelled, and the same create sent again is answered
    from the stored run, with nothing stored; another body with the id is 409."""
    await make_agent(client)
    await client.post("/v1/agents/echo/runs", json={"input": "known"})  # the agent read once
    early = await client.post("/v1/runs/early-1/cancel")
    assert (early.status_code, early.json()["code"]) == (404, "run_not_found")
    creations = creations_of(app)
    groups = creations.groups
    chosen = await client.post("/v1/agents/echo/runs", json={"input": "hi", "run_id": "mine-1"})
    assert (chosen.json()["run_id"], chosen.json()["status"]) == ("mine-1", "completed")
    body = {"input": "too late", "run_id": "early-1"}
    cancelled = await client.post("/v1/agents/echo/runs", json=body)
    assert cancelled.status_code == 200
    assert (cancelled.json()["run_id"], cancelled.json()["status"]) == ("early-1", "cancelled")
    async with client.stream("GET", "/v1/runs/early-1/events") as response:
        events = await collect(response)
    assert names(events)[-1] == "RunCancelled"
    assert "RunContent" not in names(events)
    assert creations.groups == groups + 2
    async with db_engine.connect() as conn:
        stored = set((await conn.execute(select(Run.id))).scalars())
    again = await client.post("/v1/agents/echo/runs", json=body)
    assert again.status_code == 200
    assert again.json() == cancelled.json()
    other = await client.post("/v1/agents/echo/runs", json={**body, "input": "another"})
    assert (other.status_code, other.json()["code"]) == (409, "run_exists")
    async with db_engine.connect() as conn:
        assert set((await conn.execute(select(Run.id))).scalars()) == stored
    # Many at once, chosen ids and generated ones in the same groups.
    bodies = [
        {"input": f"run {i}", **({"run_id": f"many-{i}"} if i % 2 else {})} for i in range(12)
    ]
    groups = creations.groups
    responses = await asyncio.gather(
        *(client.post("/v1/agents/echo/runs", json=one) for one in bodies)
    )
    assert [r.json()["content"] for r in responses] == [one["input"] for one in bodies]
    assert [r.json()["run_id"] for r in responses][1::2] == [f"many-{i}" for i in range(1, 12, 2)]
    assert 1 <= creations.groups - groups < len(bodies)


async def test_runs_created_together_start_only_as_many_as_there_is_room_for(
    database_url: str, db_engine: AsyncEngine
) -> None:
    """Each run being created to start here holds a slot: eight at once with room
    for two start two, and the rest wait queued."""
    application = create_app(make_settings(database_url, max_concurrent_runs=2))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://agentd.test") as http:
            await make_agent(http, model_settings={"chunk_delay": 0.05})
            manager = application.state.manager
            most = 0

            def count() -> None:  # after every step of the loop, in effect
                nonlocal most
                most = max(most, manager.in_flight)
                sampler[0] = asyncio.get_running_loop().call_soon(count)

            sampler = [asyncio.get_running_loop().call_soon(count)]
            body = {"input": "a b c", "background": True}
            try:
                responses = await asyncio.gather(
                    *(http.post("/v1/agents/echo/runs", json=body) for _ in range(8))
                )
                for response in responses:
                    run_id = response.json()["run_id"]
                    done = await wait_status(http, run_id, {"completed"}, within=20)
                    assert done["content"] == "a b c"
            finally:
                sampler[0].cancel()
            assert most == 2
            assert "queued" in {r.json()["status"] for r in responses}
            assert manager.room == 2


# -- RunCreations on its own -------------------------------------------------------


@pytest.fixture
async def pg_creations(app: FastAPI, client: httpx.AsyncClient) -> tuple[RunCreations, Any]:
    creations = creations_of(app)
    await make_agent(client)
    async with app.state.engine.connect() as conn:
        agent = await app.state.agents.current(conn, "echo")
    return creations, (app.state.runner, agent)


def new_run(session_id: str, known: Any, run_id: str | None = None, **run: Any) -> dict[str, Any]:
    """What the run route hands `RunCreations` for a run of `known` in `session_id`
    (built as the route builds it; its id `run_id` when given), with `run`'s
    column values changed."""
    runner, agent = known
    body = RunCreate(input="hi", session_id=session_id)
    record, values, _ = records.new_run(runner, agent.spec, body, RunExtras(run_id=run_id))
    return {
        "session_values": records.new_session(record, body),
        "run_values": {**values, **run},
        "agent_version": agent.spec.version,
        "agent_updated_at": agent.updated_at,
        "chosen_id": run_id is not None,
    }


async def create(creations: RunCreations, run: dict[str, Any]) -> Outcome:
    return await creations.hold_session_and_insert_run(
        run["session_values"],
        run["run_values"],
        agent_version=run["agent_version"],
        agent_updated_at=run["agent_updated_at"],
        chosen_id=run["chosen_id"],
        owner=None,
    )


async def stored(engine: AsyncEngine) -> tuple[set[str], dict[str, str | None]]:
    async with engine.connect() as conn:
        runs = set((await conn.execute(select(Run.id))).scalars())
        sessions = dict((await conn.execute(select(Session.id, Session.active_run_id))).all())
    return runs, sessions


async def test_a_group_answers_each_run_its_own_outcome(
    app: FastAPI, pg_creations: tuple[RunCreations, Any]
) -> None:
    """Requested together, stored in one round trip: two new sessions, a second run
    of one of them (the session is held by then: not stored), and a run of an
    agent version that is not the newest (not stored)."""
    creations, known = pg_creations
    first, second = new_run("s-a", known), new_run("s-b", known)
    same_session = new_run("s-a", known)
    stale = new_run("s-c", known)
    stale["agent_updated_at"] -= timedelta(seconds=1)
    groups = creations.groups
    outcomes = await asyncio.gather(
        *(create(creations, r) for r in (first, second, same_session, stale))
    )
    assert outcomes == [Held(True), Held(True), None, None]
    assert creations.groups == groups + 1
    runs, sessions = await stored(app.state.engine)
    assert runs == {first["run_values"]["id"], second["run_values"]["id"]}
    assert sessions == {"s-a": first["run_values"]["id"], "s-b": second["run_values"]["id"]}


async def test_a_group_checks_client_chosen_ids_and_uses_up_their_cancels(
    app: FastAPI, client: httpx.AsyncClient, pg_creations: tuple[RunCreations, Any]
) -> None:
    """In one group: a run with a new chosen id, the same id again (taken by the
    run before it), a run with a generated id, and a chosen id with a cancel
    that came first (stored cancelled, the cancel used up)."""
    creations, known = pg_creations
    assert (await client.post("/v1/runs/c-3/cancel")).status_code == 404  # kept
    runs = [
        new_run("s-1", known, "c-1"),
        new_run("s-2", known, "c-1"),
        new_run("s-3", known),
        new_run("s-4", known, "c-3"),
    ]
    groups = creations.groups
    outcomes = await asyncio.gather(*(create(creations, r) for r in runs))
    assert outcomes == [Held(True), ID_TAKEN, Held(True), Held(True, cancelled=True)]
    assert creations.groups == groups + 1
    stored_runs, sessions = await stored(app.state.engine)
    assert stored_runs == {"c-1", runs[2]["run_values"]["id"], "c-3"}
    assert set(sessions) == {"s-1", "s-3", "s-4"}
    async with app.state.engine.connect() as conn:
        cancelled = dict((await conn.execute(select(Run.id, Run.cancel_requested))).all())
        kept = (await conn.execute(select(RunCancel.run_id))).scalars().all()
    assert cancelled == {"c-1": False, runs[2]["run_values"]["id"]: False, "c-3": True}
    assert kept == []
    assert await create(creations, new_run("s-5", known, "c-3")) == ID_TAKEN


async def test_a_free_session_is_taken_in_a_group(
    app: FastAPI, pg_creations: tuple[RunCreations, Any]
) -> None:
    creations, known = pg_creations
    assert await create(creations, new_run("s-free", known)) == Held(created=True)
    async with app.state.engine.begin() as conn:  # its run ended: the session is free
        await conn.execute(Session.__table__.update().values(active_run_id=None))
    again = new_run("s-free", known)
    assert await create(creations, again) == Held(created=False)  # taken, not created
    assert (await stored(app.state.engine))[1] == {"s-free": again["run_values"]["id"]}


async def test_a_group_that_fails_is_stored_run_by_run(
    app: FastAPI, pg_creations: tuple[RunCreations, Any]
) -> None:
    """A value the database refuses fails the group as a whole: the others are
    stored alone and only that run fails."""
    creations, known = pg_creations
    good, also_good = new_run("s-1", known), new_run("s-2", known)
    bad = new_run("s-3", known, status=None)  # a run has a status
    groups = creations.groups
    results = await asyncio.gather(
        *(create(creations, r) for r in (good, bad, also_good)), return_exceptions=True
    )
    assert results[0] == results[2] == Held(True)
    assert isinstance(results[1], Exception)
    assert "null" in str(results[1]).lower()
    assert creations.groups == groups  # no group succeeded
    runs, sessions = await stored(app.state.engine)
    assert runs == {good["run_values"]["id"], also_good["run_values"]["id"]}
    assert set(sessions) == {"s-1", "s-2"}


async def test_a_cancelled_request_does_not_cancel_the_group(
    app: FastAPI, pg_creations: tuple[RunCreations, Any]
) -> None:
    creations, known = pg_creations
    leaving, staying = new_run("s-x", known), new_run("s-y", known)
    left = asyncio.ensure_future(create(creations, leaving))
    stays = asyncio.ensure_future(create(creations, staying))
    await asyncio.sleep(0)
    left.cancel()
    assert await stays == Held(True)
    with pytest.raises(asyncio.CancelledError):
        await left
    runs, _ = await stored(app.state.engine)
    assert staying["run_values"]["id"] in runs  # the group went on without its waiter


async def test_with_statement_listeners_each_statement_is_seen(
    app: FastAPI, pg_creations: tuple[RunCreations, Any]
) -> None:
    """Tracing that hooks SQLAlchemy's cursor events sees every run's insert; the
    group still commits once."""
    creations, known = pg_creations
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sync_engine = app.state.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        runs = [new_run(f"s-{i}", known) for i in range(3)]
        outcomes = await asyncio.gather(*(create(creations, r) for r in runs))
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)
    assert outcomes == [Held(True)] * 3
    assert sum("INSERT INTO runs" in statement for statement in seen) == 3
    assert len((await stored(app.state.engine))[0]) == 3
