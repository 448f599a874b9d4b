"""Creating a run in a new session: the agent version this process read last is
used only while the database confirms it is still the newest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import delete, event, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.tables import Agent, AgentVersion
from tests.conftest import snapshot
from tests.runs.conftest import make_agent, statements, wait_status


async def replace_agent(engine: AsyncEngine, spec: dict[str, Any]) -> None:
    """Another replica deletes the agent and creates it again (version 1 again),
    without this process hearing of it."""
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(delete(Agent).where(Agent.id == "echo"))
        values = {"tenant_id": "default", "id": "echo", "name": "", "version": 1, "spec": spec}
        await connection.execute(insert(Agent).values(**values, created_at=now, updated_at=now))
        await connection.execute(
            insert(AgentVersion).values(
                tenant_id="default", agent_id="echo", version=1, spec=spec, created_at=now
            )
        )


async def test_a_run_of_a_known_agent_is_stored_at_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """In a new session and in a free one: no read of the agent (checked inside
    the insert), and on PostgreSQL session and run in one statement."""
    await make_agent(client)
    assert (await client.post("/v1/agents/echo/runs", json={"input": "a"})).status_code == 200
    for turn, said in enumerate(["b", "c"]):
        seen = statements(app)
        body = {"input": said, "session_id": "s-1"}
        run = (await client.post("/v1/agents/echo/runs", json=body)).json()
        assert (run["status"], run["content"], run["agent_version"]) == ("completed", said, 1)
        event.remove(app.state.engine.sync_engine, "before_cursor_execute", seen.append)
        agent_reads = [sql for sql in seen if sql.startswith("SELECT") and "FROM agents" in sql]
        run_inserts = [sql for sql in seen if "INSERT INTO runs" in sql]
        assert agent_reads == []
        assert len(run_inserts) == 1
        if app.state.engine.dialect.name == "postgresql":
            assert "INSERT INTO sessions" in run_inserts[0]
            assert "UPDATE sessions" in run_inserts[0]
        # the second turn's model saw the first turn (one word each way)
        assert run["metrics"]["input_tokens"] == 1 + 2 * turn
    messages = (await client.get("/v1/sessions/s-1/messages")).json()["messages"]
    assert [m["content"] for m in messages] == ["b", "b", "c", "c"]


async def test_an_agent_replaced_elsewhere_runs_its_new_definition(
    client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    """Same id, same version number, new definition: `updated_at` tells them apart."""
    await make_agent(client)
    first = (await client.post("/v1/agents/echo/runs", json={"input": "a"})).json()
    assert first["model"] == "test:echo"
    await replace_agent(db_engine, {"model": "test:tools", "tools": ["current_time"]})
    second = (await client.post("/v1/agents/echo/runs", json={"input": "b"})).json()
    assert (second["agent_version"], second["model"]) == (1, "test:tools")


async def test_an_agent_edited_elsewhere_runs_its_new_version(
    client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    await make_agent(client)
    await client.post("/v1/agents/echo/runs", json={"input": "a"})
    spec = {"model": "test:echo", "instructions": "v2"}
    async with db_engine.begin() as connection:
        now = datetime.now(UTC)
        await connection.execute(
            update(Agent).where(Agent.id == "echo").values(version=2, spec=spec, updated_at=now)
        )
        await connection.execute(
            insert(AgentVersion).values(
                tenant_id="default", agent_id="echo", version=2, spec=spec, created_at=now
            )
        )
    second = (await client.post("/v1/agents/echo/runs", json={"input": "b"})).json()
    assert second["agent_version"] == 2


async def test_input_the_new_version_accepts_is_not_judged_by_the_old(
    client: httpx.AsyncClient,
) -> None:
    schema = {"type": "object", "required": ["q"], "properties": {"q": {"type": "string"}}}
    await make_agent(client, input_schema=schema)
    first = await client.post("/v1/agents/echo/runs", json={"input": {"q": "x"}})
    assert first.status_code == 200, first.text
    edited = await client.patch("/v1/agents/echo", json={"input_schema": None})
    assert edited.status_code == 200, edited.text
    second = await client.post("/v1/agents/echo/runs", json={"input": "plain text"})
    assert second.status_code == 200, second.text
    assert second.json()["agent_version"] == 2


async def test_an_agent_deleted_elsewhere_is_404_and_nothing_is_stored(
    client: httpx.AsyncClient, db_engine: AsyncEngine
) -> None:
    await make_agent(client)
    await client.post("/v1/agents/echo/runs", json={"input": "a"})
    async with db_engine.begin() as connection:
        await connection.execute(delete(Agent).where(Agent.id == "echo"))
    before = await snapshot(db_engine)
    response = await client.post("/v1/agents/echo/runs", json={"input": "b"})
    assert response.status_code == 404
    assert response.json()["code"] == "agent_not_found"
    assert await snapshot(db_engine) == before


async def test_concurrent_runs_in_one_new_session_hold_it_once(
    client: httpx.AsyncClient,
) -> None:
    await make_agent(client, model_settings={"chunk_delay": 0.05})
    await client.post("/v1/agents/echo/runs", json={"input": "known"})
    body = {"input": "a b c", "session_id": "race", "background": True}
    responses = await asyncio.gather(
        *(client.post("/v1/agents/echo/runs", json=body) for _ in range(6))
    )
    codes = sorted(response.status_code for response in responses)
    assert codes == [202, 409, 409, 409, 409, 409], [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 202)
    session = (await client.get("/v1/sessions/race")).json()
    assert session["active_run_id"] in (winner["run_id"], None)
    done = await wait_status(client, winner["run_id"], {"completed"})
    assert done["content"] == "a b c"
