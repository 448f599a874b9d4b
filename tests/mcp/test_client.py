"""Agents using tools of real MCP servers (Streamable HTTP and stdio): listing,
calling, names, results, errors, confirmation, list changes and definition-time
checks."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx

from tests.mcp.conftest import HttpFake, create_agent, log_lines, run
from tests.sse_client import collect

PIXEL = base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()


def executions(output: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {tool["tool_name"]: tool for tool in output["tools"]}


async def test_an_agent_calls_tools_of_both_servers(client: httpx.AsyncClient) -> None:
    await create_agent(
        client,
        id="both",
        tools=[
            "mcp:web/add",
            "mcp:local/add",
            {"type": "mcp", "server": "local", "tools": ["echo", "picture", "fail"]},
            "current_time",
        ],
    )
    output = await run(client, "both")
    assert output["status"] == "completed", output
    assert output["content"] == "Called 6 tools."
    done = executions(output)
    # Two servers' `add` clash: both are named after their server; the others keep their names.
    assert sorted(done) == ["current_time", "echo", "fail", "local__add", "picture", "web__add"]
    assert done["web__add"]["result"] == {"result": 0}
    assert done["local__add"]["result"] == {"result": 0}
    assert done["echo"]["result"] == {"result": "a"}
    assert done["picture"]["result"] == {
        "content": [
            {"type": "image", "mime_type": "image/png", "data": PIXEL},
            {"type": "text", "text": "a pixel"},
        ]
    }
    # An isError result goes back to the model as a tool error; the run goes on.
    assert done["fail"]["status"] == "error"
    assert done["fail"]["error"] == "Error executing tool fail: a"
    tool_messages = [m for m in output["messages"] if m["role"] == "tool"]
    assert "Error: Error executing tool fail: a" in [m["content"] for m in tool_messages]
    called = [c["function"]["name"] for c in output["messages"][1]["tool_calls"]]
    assert sorted(called) == sorted(done)


async def test_events_name_the_tool_as_the_model_did(client: httpx.AsyncClient) -> None:
    await create_agent(client, id="evented", tools=["mcp:web/echo", "mcp:local/echo"])
    body = {"input": "go", "stream": True, "stream_events": True}
    async with client.stream("POST", "/v1/agents/evented/runs", json=body) as response:
        messages = await collect(response)
    names = [m.event for m in messages]
    assert names[0] == "RunStarted" and names[-1] == "RunCompleted"
    assert names.count("ToolCallStarted") == 2 and names.count("ToolCallCompleted") == 2
    started = sorted(m.data["tool"]["tool_name"] for m in messages if m.event == "ToolCallStarted")
    assert started == ["local__echo", "web__echo"]


async def test_tools_lists_mcp_tools_with_their_server(client: httpx.AsyncClient) -> None:
    data = (await client.get("/v1/tools", params={"limit": 200})).json()["data"]
    by_key = {(tool["name"], tool["server"]): tool for tool in data}
    assert by_key[("current_time", None)]["server"] is None
    for server in ("web", "local"):
        add = by_key[("add", server)]
        # The input schema as the server published it.
        assert add["parameters"] == {
            "type": "object",
            "properties": {
                "a": {"title": "A", "type": "integer"},
                "b": {"title": "B", "type": "integer"},
            },
            "required": ["a", "b"],
            "title": "addArguments",
        }
        assert add["description"] == "Add two integers."
    keys = [(tool["name"], tool["server"] or "") for tool in data]
    assert keys == sorted(keys)


async def test_paging_through_tools_of_several_servers(client: httpx.AsyncClient) -> None:
    everything = (await client.get("/v1/tools", params={"limit": 200})).json()["data"]
    seen: list[tuple[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/tools", params=params)).json()
        seen += [(tool["name"], tool["server"]) for tool in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [(tool["name"], tool["server"]) for tool in everything]


async def test_confirmation_pauses_then_the_call_runs_once(
    client: httpx.AsyncClient, fake_log: Path
) -> None:
    tools = [{"type": "mcp", "server": "web", "tools": ["record"], "requires_confirmation": True}]
    await create_agent(client, id="careful", tools=tools)
    paused = await run(client, "careful")
    assert paused["status"] == "paused"
    [requirement] = paused["requirements"]
    assert (requirement["tool_name"], requirement["kind"]) == ("record", "confirmation")
    assert log_lines(fake_log, "call") == []  # nothing ran before the human said yes
    call_id = requirement["tool_call_id"]
    answer = {"tools": [{"tool_call_id": call_id, "confirmed": True}]}
    done = (await client.post(f"/v1/runs/{paused['run_id']}/continue", json=answer)).json()
    assert done["status"] == "completed"
    assert executions(done)["record"]["result"] == {"result": "recorded a"}
    assert log_lines(fake_log, "effect") == [f"{paused['run_id']}:{call_id}"]


async def test_a_rejected_call_never_reaches_the_server(
    client: httpx.AsyncClient, fake_log: Path
) -> None:
    tools = [
        {"type": "mcp", "server": "local", "tools": ["record"], "requires_confirmation": ["record"]}
    ]
    await create_agent(client, id="rejecting", tools=tools)
    paused = await run(client, "rejecting")
    call_id = paused["requirements"][0]["tool_call_id"]
    answer = {"tools": [{"tool_call_id": call_id, "confirmed": False, "note": "no"}]}
    done = (await client.post(f"/v1/runs/{paused['run_id']}/continue", json=answer)).json()
    assert done["status"] == "completed"
    assert executions(done)["record"]["status"] == "rejected"
    assert log_lines(fake_log, "call") == []


async def test_a_changed_tool_list_is_seen_by_the_next_run(client: httpx.AsyncClient) -> None:
    await create_agent(client, id="growing", tools=["mcp:local/grow", "mcp:local/add"])
    listed = (await client.get("/v1/tools", params={"limit": 200})).json()["data"]
    assert "a" not in {tool["name"] for tool in listed}
    first = await run(client, "growing")  # grow(name="a") adds a tool named "a"
    assert executions(first)["grow"]["result"] == {"result": "added a"}
    tools = (await client.get("/v1/tools", params={"limit": 200})).json()["data"]
    assert ("a", "local") in {(t["name"], t["server"]) for t in tools}
    response = await client.post("/v1/agents", json={"id": "uses-a", "tools": ["mcp:local/a"]})
    assert response.status_code == 201, response.text


async def test_unknown_servers_and_tools_are_422_at_definition_time(
    client: httpx.AsyncClient,
) -> None:
    body = {
        "id": "wrong",
        "tools": [
            "mcp:nowhere",
            "mcp:web/subtract",
            {"type": "mcp", "server": "local", "tools": ["add", "divide"]},
            {"type": "mcp", "server": "local", "tools": ["echo"], "requires_confirmation": ["x"]},
            {"type": "mcp", "server": "web", "tools": ["echo"], "requires_confirmation": ["add"]},
            "mcp:web/add",
            "mcp:web/add",
        ],
    }
    response = await client.post("/v1/agents", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [
        (["tools", 0], "unknown_mcp_server"),
        (["tools", 1], "unknown_tool"),
        (["tools", 2], "unknown_tool"),
        (["tools", 3], "unknown_tool"),
        (["tools", 4], "value_error"),
        (["tools", 6], "value_error"),
    ]
    assert "'subtract'" in problem["errors"][1]["msg"] and "'divide'" in problem["errors"][2]["msg"]
    assert (await client.get("/v1/agents/wrong")).status_code == 404
    for bad in ("mcp:", "mcp:a b", "mcp:web/", {"type": "mcp", "server": "web", "tools": ["a b"]}):
        response = await client.post("/v1/agents", json={"tools": [bad]})
        assert response.status_code == 422, bad


async def test_an_unreachable_server_is_its_own_422(
    client: httpx.AsyncClient, web: HttpFake
) -> None:
    await create_agent(client, id="patched", tools=[])
    await web.stop()
    for response in (
        await client.post("/v1/agents", json={"id": "down", "tools": ["mcp:web/add"]}),
        await client.patch("/v1/agents/patched", json={"tools": ["mcp:web"]}),
    ):
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "mcp_server_unreachable"
        assert problem["servers"] == ["web"]
        assert "'web'" in problem["detail"]
        assert problem["errors"][0]["type"] == "mcp_server_unreachable"
        assert problem["errors"][0]["server"] == "web"
    await web.start()
    response = await client.post("/v1/agents", json={"id": "up", "tools": ["mcp:web/add"]})
    assert response.status_code == 201, response.text
