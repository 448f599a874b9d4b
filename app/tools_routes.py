"""`GET /v1/tools`: the server's registered tools and the MCP servers' tools, with
their JSON Schemas."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.engine.remote import RemoteTools, RemoteToolsUnavailable
from app.pagination import CursorQuery, LimitQuery, Page, decode_cursor, encode_cursor
from app.routing import StrictJSONRoute

log = logging.getLogger("agentd")

router = APIRouter(prefix="/v1/tools", tags=["tools"], route_class=StrictJSONRoute)


class ToolInfo(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    server: str | None = Field(
        description="The MCP server (in MCP_SERVERS) the tool belongs to; null for built-in "
        "and Python tools."
    )


@router.get("")
async def list_tools(
    request: Request, limit: LimitQuery = 100, cursor: CursorQuery = None
) -> Page[ToolInfo]:
    """Built-in tools, those registered from TOOL_MODULES and those of the MCP servers
    (a server that cannot be reached lists none), by name, then server."""
    after = tuple(decode_cursor(cursor, str, str)) if cursor else None
    runtime = request.app.state.runtime
    tools = [
        ToolInfo(name=d.name, description=d.description, parameters=d.parameters, server=None)
        for d in (tool.definition() for tool in runtime.tools.list())
    ]
    tools += await _mcp_tools(runtime.mcp)
    tools.sort(key=_key)
    if after is not None:
        tools = [tool for tool in tools if _key(tool) > after]
    page, more = tools[:limit], len(tools) > limit
    next_cursor = encode_cursor(list(_key(page[-1]))) if more else None
    return Page(data=page, next_cursor=next_cursor)


def _key(tool: ToolInfo) -> tuple[str, str]:
    return tool.name, tool.server or ""


async def _mcp_tools(remote: RemoteTools) -> list[ToolInfo]:
    servers = remote.servers()
    listed = await asyncio.gather(*(_server_tools(remote, server) for server in servers))
    return [tool for tools in listed for tool in tools]


async def _server_tools(remote: RemoteTools, server: str) -> list[ToolInfo]:
    try:
        tools = await remote.tools(server)
    except RemoteToolsUnavailable as exc:
        log.warning("GET /v1/tools: %s", exc)
        return []
    return [
        ToolInfo(
            name=tool.remote_name,
            description=tool.description,
            parameters=tool.parameters,
            server=server,
        )
        for tool in tools
    ]
