"""agentd's own MCP endpoint at /mcp, driven with the SDK's Streamable HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from fastapi import FastAPI
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from app.main import create_app
from tests.conftest import make_settings, served

KEY = "secret-key"


@asynccontextmanager
async def agentd(database_url: str, **settings: Any) -> AsyncIterator[FastAPI]:
    async with served(create_app(make_settings(database_url, **settings))) as application:
        transport = httpx.ASGITransport(app=application)
        headers = {"Authorization": f"Bearer {KEY}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://agentd.test", headers=headers
        ) as http:
            for body in (
                {"id": "echo", "name": "Echo", "model": "test:echo"},
                {"id": "typed", "model": "test:echo", "output_schema": _POINT},
                {"id": "tooled", "model": "test:tools", "tools": ["current_time"]},
            ):
                assert (await http.post("/v1/agents", json=body)).status_code == 201
        yield application


_POINT = {
    "title": "Point",
    "type": "object",
    "properties": {"x": {"type": "integer"}},
    "required": ["x"],
}


def mcp_client(application: FastAPI, key: str | None = KEY) -> tuple[httpx2.AsyncClient, Client]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    transport = httpx2.ASGITransport(app=application)
    http = httpx2.AsyncClient(transport=transport, base_url="http://agentd.test", headers=headers)
    return http, Client(streamable_http_client("http://agentd.test/mcp", http_client=http))


async def test_tools_with_their_schemas(database_url: str, db_engine: Any) -> None:
    async with agentd(database_url) as application:
        http, client = mcp_client(application, key=None)
        async with http, client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert sorted(tools) == ["get_run", "list_agents", "run_agent"]
            run_agent = tools["run_agent"].input_schema
            assert run_agent["required"] == ["agent_id", "input"]
            assert set(run_agent["properties"]) == {"agent_id", "input", "session_id"}
            assert tools["get_run"].input_schema["required"] == ["run_id"]
            listed = await client.call_tool("list_agents", {})
            assert listed.is_error is False
            agents = listed.structured_content["agents"]
            assert [(a["id"], a["name"], a["model"]) for a in agents] == [
                ("echo", "Echo", "test:echo"),
                ("tooled", "", "test:tools"),
                ("typed", "", "test:echo"),
            ]


async def test_run_agent_answers_the_content_and_get_run_reads_it(
    database_url: str, db_engine: Any
) -> None:
    async with agentd(database_url) as application:
        http, client = mcp_client(application)
        async with http, client:
            answer = await client.call_tool(
                "run_agent", {"agent_id": "echo", "input": "hello there", "session_id": "s-1"}
            )
            assert (answer.is_error, answer.content[0].text) == (False, "hello there")
            again = await client.call_tool(
                "run_agent", {"agent_id": "echo", "input": "again", "session_id": "s-1"}
            )
            assert again.content[0].text == "again"
            typed = await client.call_tool("run_agent", {"agent_id": "typed", "input": "x"})
            assert typed.content[0].text == '{"x": 0}'
            tooled = await client.call_tool("run_agent", {"agent_id": "tooled", "input": "x"})
            assert tooled.content[0].text == "Called 1 tools."
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application),
            base_url="http://agentd.test",
            headers={"Authorization": f"Bearer {KEY}"},
        ) as rest:
            session = (await rest.get("/v1/sessions/s-1")).json()
        assert len(session["run_ids"]) == 2  # both runs are in the one session
        http, client = mcp_client(application)
        async with http, client:
            run = await client.call_tool("get_run", {"run_id": session["run_ids"][0]})
            assert run.structured_content is not None
            assert (run.structured_content["status"], run.structured_content["session_id"]) == (
                "completed",
                "s-1",
            )
            assert run.structured_content["agent_id"] == "echo"


async def test_bad_calls_are_tool_errors(database_url: str, db_engine: Any) -> None:
    async with agentd(database_url) as application:
        http, client = mcp_client(application)
        async with http, client:
            missing = await client.call_tool("run_agent", {"agent_id": "nobody", "input": "hi"})
            assert missing.is_error
            assert "No agent 'nobody'" in missing.content[0].text
            bad = await client.call_tool("run_agent", {"agent_id": "Not An Id", "input": "hi"})
            assert bad.is_error
            unknown = await client.call_tool("get_run", {"run_id": "no-such-run"})
            assert unknown.is_error
            assert "No run 'no-such-run'" in unknown.content[0].text


@pytest.mark.parametrize("key", [None, "wrong"])
async def test_the_endpoint_needs_an_api_key_when_keys_are_set(
    database_url: str, db_engine: Any, key: str | None
) -> None:
    async with agentd(database_url, api_keys=KEY) as application:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://agentd.test"
        ) as raw:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            refused = await raw.post("/mcp", json={}, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "unauthorized"
        http, client = mcp_client(application, key=key)
        with pytest.raises(Exception):  # noqa: B017 - the SDK raises its own group
            async with http, client:
                pass
        http, client = mcp_client(application)
        async with http, client:
            assert len((await client.list_tools()).tools) == 3
