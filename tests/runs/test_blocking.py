"""Blocking and background runs, reading runs, and run listing."""

from __future__ import annotations

import httpx

from tests.runs.conftest import make_agent, wait_status
from tests.sse_client import collect


async def test_blocking_run_answers_run_output(client: httpx.AsyncClient) -> None:
    await make_agent(client, name="Echo")
    response = await client.post(
        "/v1/agents/echo/runs",
        json={"input": "hello agent", "user_id": "u-1", "metadata": {"k": "v"}},
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "completed"
    assert run["content"] == "hello agent"
    assert run["content_type"] == "str"
    assert run["agent_id"] == "echo"
    assert run["agent_name"] == "Echo"
    assert run["agent_version"] == 1
    assert run["last_agent_id"] == "echo"
    assert run["user_id"] == "u-1"
    assert run["model"] == "test:echo"
    assert run["metadata"] == {"k": "v"}
    assert run["error"] is None
    assert run["messages"] == [
        {"role": "user", "content": "hello agent"},
        {"role": "assistant", "content": "hello agent"},
    ]
    assert run["metrics"]["model_calls"] == 1
    assert run["metrics"]["total_tokens"] > 0
    stored = (await client.get(f"/v1/runs/{run['run_id']}")).json()
    assert stored["content"] == "hello agent"
    assert stored["status"] == "completed"
    # Nobody watched it arrive: the answer is one RunContent, not one per word.
    async with client.stream("GET", f"/v1/runs/{run['run_id']}/events") as events:
        contents = [m.data["content"] for m in await collect(events) if m.event == "RunContent"]
    assert contents == ["hello agent"]


async def test_run_pins_the_agent_version(client: httpx.AsyncClient) -> None:
    await make_agent(client)
    first = (await client.post("/v1/agents/echo/runs", json={"input": "a"})).json()
    await client.patch("/v1/agents/echo", json={"instructions": "v2"})
    second = (await client.post("/v1/agents/echo/runs", json={"input": "b"})).json()
    assert (first["agent_version"], second["agent_version"]) == (1, 2)


async def test_an_agent_deleted_and_created_again_runs_its_new_definition(
    client: httpx.AsyncClient,
) -> None:
    """Versions start at 1 again after a delete: nothing cached for the old
    agent's version 1 may stand in for the new one's."""
    await make_agent(client)
    first = (await client.post("/v1/agents/echo/runs", json={"input": "a"})).json()
    assert (first["content"], first["tools"]) == ("a", [])
    assert (await client.delete("/v1/agents/echo")).status_code == 204
    await make_agent(client, model="test:tools", tools=["current_time"])
    second = (await client.post("/v1/agents/echo/runs", json={"input": "b"})).json()
    assert second["agent_version"] == 1
    assert second["model"] == "test:tools"
    assert [tool["tool_name"] for tool in second["tools"]] == ["current_time"]


async def test_background_run_202_with_location(client: httpx.AsyncClient) -> None:
    await make_agent(client)
    response = await client.post(
        "/v1/agents/echo/runs", json={"input": "later", "background": True}
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] in {"running", "completed"}
    assert response.headers["location"] == f"/v1/runs/{body['run_id']}"
    run = await wait_status(client, body["run_id"], {"completed"})
    assert run["content"] == "later"


async def test_session_history_is_stored_per_run(client: httpx.AsyncClient) -> None:
    """Each completed run appends its own messages (what the model saw is checked
    against a recording model server in test_openai_service.py)."""
    await make_agent(client)
    for text in ("one", "two", "three"):
        response = await client.post(
            "/v1/agents/echo/runs", json={"input": text, "session_id": "conv"}
        )
        assert response.json()["status"] == "completed"
        assert response.json()["messages"] == [
            {"role": "user", "content": text},
            {"role": "assistant", "content": text},
        ]
    messages = (await client.get("/v1/sessions/conv/messages")).json()["messages"]
    assert [m["content"] for m in messages if m["role"] == "user"] == ["one", "two", "three"]


async def test_session_state_flows_in_and_is_kept(client: httpx.AsyncClient) -> None:
    await make_agent(client)
    await client.post(
        "/v1/agents/echo/runs",
        json={"input": "x", "session_id": "st", "session_state": {"cart": [1]}},
    )
    session = (await client.get("/v1/sessions/st")).json()
    assert session["session_state"] == {"cart": [1]}
    await client.post(
        "/v1/agents/echo/runs", json={"input": "y", "session_id": "st", "session_state": {"n": 2}}
    )
    session = (await client.get("/v1/sessions/st")).json()
    assert session["session_state"] == {"cart": [1], "n": 2}
    assert len(session["run_ids"]) == 2


async def test_list_runs_filters_and_paginates(client: httpx.AsyncClient) -> None:
    await make_agent(client)
    await make_agent(client, id="other")
    ids = []
    for index in range(3):
        run = await client.post(
            "/v1/agents/echo/runs", json={"input": f"m{index}", "user_id": "alice"}
        )
        ids.append(run.json()["run_id"])
    await client.post("/v1/agents/other/runs", json={"input": "x", "user_id": "bob"})
    page = (await client.get("/v1/runs", params={"agent_id": "echo", "limit": 2})).json()
    assert [r["run_id"] for r in page["data"]] == ids[::-1][:2]
    rest = (
        await client.get(
            "/v1/runs", params={"agent_id": "echo", "limit": 2, "cursor": page["next_cursor"]}
        )
    ).json()
    assert [r["run_id"] for r in rest["data"]] == [ids[0]]
    assert rest["next_cursor"] is None
    bob = (await client.get("/v1/runs", params={"user_id": "bob"})).json()["data"]
    assert [r["agent_id"] for r in bob] == ["other"]
    done = (await client.get("/v1/runs", params={"status": "completed"})).json()["data"]
    assert len(done) == 4
    assert (await client.get("/v1/runs", params={"status": "running"})).json()["data"] == []


async def test_run_errors_answer_200_with_code(client: httpx.AsyncClient) -> None:
    await make_agent(client, model="test:tools", tools=["current_time"], max_turns=1)
    run = (await client.post("/v1/agents/echo/runs", json={"input": "go"})).json()
    assert run["status"] == "error"
    assert run["error"]["code"] == "max_turns_exceeded"
    failing = await client.post(
        "/v1/agents/echo/runs",
        json={"input": "go", "run_config": {"max_turns": 5, "model_settings": {"fail": True}}},
    )
    assert failing.json()["status"] == "error"
    assert failing.json()["error"]["code"] == "model_provider_error"
    guarded = await make_agent(
        client, id="guarded", input_guardrails=[{"type": "blocklist", "words": ["secret"]}]
    )
    assert guarded["id"] == "guarded"
    tripped = (await client.post("/v1/agents/guarded/runs", json={"input": "my secret"})).json()
    assert tripped["status"] == "error"
    assert tripped["error"]["code"] == "input_guardrail_tripwire_triggered"


async def test_structured_output(client: httpx.AsyncClient) -> None:
    schema = {
        "title": "Weather",
        "type": "object",
        "properties": {"city": {"type": "string"}, "degrees": {"type": "integer"}},
        "required": ["city", "degrees"],
        "additionalProperties": False,
    }
    await make_agent(client, output_schema=schema)
    run = (await client.post("/v1/agents/echo/runs", json={"input": "weather?"})).json()
    assert run["status"] == "completed"
    assert run["content_type"] == "Weather"
    assert set(run["content"]) == {"city", "degrees"}
    assert isinstance(run["content"]["degrees"], int)


async def test_tools_are_listed(client: httpx.AsyncClient) -> None:
    tools = (await client.get("/v1/tools")).json()["data"]
    by_name = {tool["name"]: tool for tool in tools}
    assert {"current_time", "calculator"} <= set(by_name)
    assert by_name["calculator"]["parameters"]["type"] == "object"
    assert by_name["calculator"]["description"]
