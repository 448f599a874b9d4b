"""/mcp, outside the OpenAPI schema, holds to the same rules as every route:
the caller's tenant only (another tenant's agents and runs answer as missing
ones), the scope each tool needs, and 401 without credentials."""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
from fastapi import FastAPI
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.identity.conftest import bearer, hs256

ACME = bearer(hs256({"tenant_id": "acme", "scope": "admin"}))
GLOBEX = bearer(hs256({"tenant_id": "globex", "scope": "admin"}))


def mcp_client(app: FastAPI, headers: dict[str, str]) -> tuple[httpx2.AsyncClient, Client]:
    transport = httpx2.ASGITransport(app=app, client=("203.0.113.7", 1))
    http = httpx2.AsyncClient(transport=transport, base_url="http://agentd.test", headers=headers)
    return http, Client(streamable_http_client("http://agentd.test/mcp", http_client=http))


async def call(app: FastAPI, headers: dict[str, str], tool: str, **arguments: Any) -> Any:
    http, client = mcp_client(app, headers)
    async with http, client:
        return await client.call_tool(tool, arguments)


def error_text(result: Any) -> str:
    assert result.is_error is True
    return str(result.content[0].text)


async def test_mcp_tools_see_their_tenant_only(keyed_app: FastAPI, http: httpx.AsyncClient) -> None:
    for tenant, headers in (("acme", ACME), ("globex", GLOBEX)):
        agent = {"id": f"helper-{tenant}", "name": tenant, "model": "test:echo"}
        assert (await http.post("/v1/agents", json=agent, headers=headers)).status_code == 201
    ran = await call(keyed_app, ACME, "run_agent", agent_id="helper-acme", input="hi")
    assert ran.is_error is False
    run_id = (await http.get("/v1/runs", headers=ACME)).json()["data"][0]["run_id"]

    listed = await call(keyed_app, GLOBEX, "list_agents")
    assert [agent["id"] for agent in listed.structured_content["agents"]] == ["helper-globex"]
    theirs = error_text(await call(keyed_app, GLOBEX, "get_run", run_id=run_id))
    missing = error_text(await call(keyed_app, GLOBEX, "get_run", run_id="no-such-run"))
    assert theirs.replace(run_id, "X") == missing.replace("no-such-run", "X")
    other_agent = error_text(
        await call(keyed_app, GLOBEX, "run_agent", agent_id="helper-acme", input="hi")
    )
    no_agent = error_text(await call(keyed_app, GLOBEX, "run_agent", agent_id="nobody", input="hi"))
    assert other_agent.replace("helper-acme", "X") == no_agent.replace("nobody", "X")
    mine = await call(keyed_app, ACME, "get_run", run_id=run_id)
    assert mine.structured_content["content"] == "hi"


async def test_mcp_tools_need_their_scopes(keyed_app: FastAPI, http: httpx.AsyncClient) -> None:
    writer = bearer(hs256({"tenant_id": "acme", "scope": "runs:write"}))
    assert "agents:read" in error_text(await call(keyed_app, writer, "list_agents"))
    assert "runs:read" in error_text(await call(keyed_app, writer, "get_run", run_id="r"))
    reader = bearer(hs256({"tenant_id": "acme", "scope": "runs:read agents:read"}))
    refused = await call(keyed_app, reader, "run_agent", agent_id="helper", input="hi")
    assert "runs:write" in error_text(refused)


async def test_mcp_without_credentials_is_401(http: httpx.AsyncClient) -> None:
    answer = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
