"""MCP servers that go away, hang, die mid-call or answer garbage: the model reads a
tool error, the run goes on, the next use gets a new session, nothing leaks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.mcp.conftest import (
    FAKE,
    HttpFake,
    children,
    create_agent,
    run,
    served_client,
    stdio_server,
)


def tool_result(output: dict[str, Any], name: str) -> dict[str, Any]:
    return next(tool for tool in output["tools"] if tool["tool_name"] == name)


async def test_an_http_server_restarted_between_runs_is_used_again(
    client: httpx.AsyncClient, web: HttpFake
) -> None:
    await create_agent(client, id="adder", tools=["mcp:web/add"])
    first = await run(client, "adder")
    assert tool_result(first, "add")["result"] == {"result": 0}
    await web.restart()
    second = await run(client, "adder")
    assert second["status"] == "completed"
    assert tool_result(second, "add")["result"] == {"result": 0}


async def test_a_stdio_server_that_died_mid_call_is_started_again(
    client: httpx.AsyncClient,
) -> None:
    await create_agent(client, id="dying", tools=["mcp:local/die"])
    await create_agent(client, id="echoing", tools=["mcp:local/echo"])
    died = await run(client, "dying")
    assert died["status"] == "completed"  # the run goes on
    call = tool_result(died, "die")
    assert call["status"] == "error"
    assert call["error"].startswith("tool die failed: Connection closed")
    later = await run(client, "echoing")
    assert tool_result(later, "echo")["result"] == {"result": "a"}
    assert len(children(f"{FAKE} stdio")) == 1  # the new process, not a leftover


async def test_a_hanging_call_times_out_as_a_tool_error(
    database_url: str, db_engine: Any, fake_log: Path
) -> None:
    servers = {"local": stdio_server(fake_log, timeout=0.5)}
    async with served_client(make_settings(database_url, mcp_servers=servers)) as client:
        await create_agent(client, id="patient", tools=["mcp:local/hang", "mcp:local/echo"])
        loop = asyncio.get_running_loop()
        started = loop.time()
        output = await run(client, "patient")
        assert loop.time() - started < 5
        assert output["status"] == "completed"
        hung = tool_result(output, "hang")
        assert (hung["status"], hung["error"]) == (
            "error",
            "tool hang failed: Request 'tools/call' timed out",
        )
        assert tool_result(output, "echo")["result"] == {"result": "a"}
        again = await run(client, "patient")  # the session outlived the timeout
        assert tool_result(again, "echo")["result"] == {"result": "a"}
        assert len(children(f"{FAKE} stdio")) == 1


async def test_garbage_from_a_server_is_a_tool_error_and_the_run_goes_on(
    client: httpx.AsyncClient, web: HttpFake
) -> None:
    await create_agent(client, id="garbled", tools=["mcp:web/echo", "mcp:local/echo"])
    await web.restart("garbage-http")
    output = await run(client, "garbled")
    assert output["status"] == "completed"
    failed = tool_result(output, "web__echo")
    assert failed["status"] == "error"
    assert "unreachable" in failed["error"]
    assert tool_result(output, "local__echo")["result"] == {"result": "a"}
    tools = (await client.get("/v1/tools", params={"limit": 200})).json()["data"]
    assert {tool["server"] for tool in tools} == {None, "local"}  # web lists nothing now


@pytest.mark.parametrize("kind", ["garbage", "silent"])
async def test_a_stdio_server_not_speaking_mcp_is_unreachable(
    database_url: str, db_engine: Any, fake_log: Path, kind: str
) -> None:
    server = stdio_server(fake_log, connect_timeout=1)
    if kind == "garbage":
        server["args"] = ["-m", FAKE, "garbage-stdio"]
    else:
        server["args"] = ["-c", "import time; time.sleep(60)"]
    settings = make_settings(database_url, mcp_servers={"odd": server})
    async with served_client(settings) as client:
        response = await client.post("/v1/agents", json={"tools": ["mcp:odd"]})
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "mcp_server_unreachable"
    assert children("garbage-stdio") == [] and children("time.sleep(60)") == []


async def test_shutdown_stops_stdio_servers(
    database_url: str, db_engine: Any, fake_log: Path
) -> None:
    settings = make_settings(database_url, mcp_servers={"local": stdio_server(fake_log)})
    async with served_client(settings) as client:
        await create_agent(client, id="local-echo", tools=["mcp:local/echo"])
        assert len(children(f"{FAKE} stdio")) == 1
    assert children(f"{FAKE} stdio") == []
