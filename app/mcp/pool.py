"""The MCP servers named in MCP_SERVERS, one session each per process.

`McpPool` is the engine's `RemoteTools`: the servers' tools by server, and
the calls they make. Sessions are opened on first use (nothing connects at
start-up, so a server that is down does not stop the service) and closed at
shutdown. The MCP SDK is imported only when MCP_SERVERS names a server: with none,
the pool costs no memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from app.config import McpServerConfig
from app.engine.remote import RemoteTool

if TYPE_CHECKING:
    from mcp.types import CallToolResult

    from app.mcp.connection import ServerConnection


class McpPool:
    def __init__(self, servers: Mapping[str, McpServerConfig]) -> None:
        self._connections: dict[str, ServerConnection] = {}
        if servers:
            from app.mcp.connection import ServerConnection

            self._connections = {name: ServerConnection(name, c) for name, c in servers.items()}

    def servers(self) -> list[str]:
        return sorted(self._connections)

    async def tools(self, server: str, *, last_known: bool = False) -> list[RemoteTool]:
        """The server's tools; KeyError for an unknown server, RemoteToolsUnavailable."""
        from app.mcp.tools import McpTool

        connection = self._connections[server]
        listed = await connection.tools(last_known=last_known)
        return [McpTool.of(server, tool, self, connection.config.timeout) for tool in listed]

    async def call(
        self, server: str, tool: str, arguments: dict[str, Any], meta: dict[str, Any]
    ) -> CallToolResult:
        return await self._connections[server].call(tool, arguments, meta)

    async def aclose(self) -> None:
        await asyncio.gather(*(c.close() for c in self._connections.values()))
