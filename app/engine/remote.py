"""Tools that run outside this process (an MCP server's), as the loop sees them.

A `RemoteTool` carries the input schema its server published, passed to the
model as it is, and answers a call with a `ToolOutcome` (a result, or an
error the model reads). `RemoteTools` finds a server's tools; the application
provides it (app/mcp). Every call carries the run's idempotency key
(`RunContext.idempotency_key`): a result is checkpointed before its
`ToolCallCompleted` is announced, so a resumed run only sends again a call
whose result was never stored, with the same key, and a server that honours
the key performs it once.

The model sees a remote tool under its own name, or as `<server>__<tool>`
where that name is taken by another of the agent's tools; `remote_slots`
decides the names.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from typing import Any, Protocol

from app.engine.errors import RunFailure
from app.engine.models.base import ToolDefinition
from app.engine.spec import McpToolUse
from app.engine.tools import RunContext, ToolOutcome

logger = logging.getLogger(__name__)

_NOT_IN_A_NAME = re.compile(r"[^a-zA-Z0-9_-]")


class RemoteToolsUnavailable(Exception):
    """A server's tools could not be listed: it is unreachable, failing or not speaking MCP."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"MCP server {server!r} is unreachable: {reason}")
        self.server = server
        self.reason = reason


class RemoteTool(Protocol):
    """One tool of a server, under the name the model sees (`name`)."""

    @property
    def name(self) -> str: ...

    @property
    def server(self) -> str: ...

    @property
    def remote_name(self) -> str:
        """The tool's name on its server."""
        ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> dict[str, Any]: ...

    @property
    def timeout(self) -> float | None: ...

    def renamed(self, name: str) -> RemoteTool: ...

    async def call(self, arguments: dict[str, Any], ctx: RunContext) -> ToolOutcome:
        """Call the tool; a failure the model should read is an outcome with `error`."""
        ...


class RemoteTools(Protocol):
    def servers(self) -> list[str]:
        """The names of the configured servers."""
        ...

    async def tools(self, server: str, *, last_known: bool = False) -> list[RemoteTool]:
        """The server's tools; KeyError for an unknown server, RemoteToolsUnavailable
        when they cannot be had. With `last_known`, a server that cannot be reached
        now answers the tools it last listed, if it ever did."""
        ...


def remote_definition(tool: RemoteTool) -> ToolDefinition:
    return ToolDefinition(tool.name, tool.description, tool.parameters)


async def execute_remote(
    tool: RemoteTool, arguments: dict[str, Any], ctx: RunContext
) -> ToolOutcome:
    """Call a remote tool within its timeout; its failures become an error outcome."""
    deadline = asyncio.timeout(tool.timeout)
    try:
        async with deadline:
            return await tool.call(arguments, ctx)
    except TimeoutError as exc:
        if deadline.expired():
            return ToolOutcome(error=f"tool {tool.name} timed out after {tool.timeout} s")
        return ToolOutcome(error=f"tool {tool.name} failed: TimeoutError: {exc}")
    except Exception as exc:
        logger.info("remote tool %s raised", tool.name, exc_info=True)
        return ToolOutcome(error=f"tool {tool.name} failed: {type(exc).__name__}: {exc}")


async def remote_slots(
    uses: list[McpToolUse], remote: RemoteTools | None, taken: set[str]
) -> list[tuple[RemoteTool, bool]]:
    """The tools `uses` name, each under the name the model sees, with whether its
    calls need confirmation; `taken` holds the agent's other tools' names.
    Raises RunFailure for an unknown server or tool, or unreachable server."""
    chosen: dict[tuple[str, str], tuple[RemoteTool, bool]] = {}
    for use in uses:
        for tool in await _server_tools(remote, use.server, use.tools):
            key = (tool.server, tool.remote_name)
            confirms = use.confirms(tool.remote_name) or (key in chosen and chosen[key][1])
            chosen[key] = (tool, confirms)
    counts = Counter(model_name(tool.remote_name) for tool, _ in chosen.values())
    named: list[tuple[RemoteTool, bool]] = []
    for tool, confirms in chosen.values():
        name = model_name(tool.remote_name)
        if name in taken or counts[name] > 1:
            name = model_name(f"{tool.server}__{tool.remote_name}")
        named.append((tool.renamed(name), confirms))
    return named


def model_name(name: str) -> str:
    """`name` as a model accepts a tool name: `[a-zA-Z0-9_-]{1,64}`."""
    return _NOT_IN_A_NAME.sub("_", name)[:64]


async def _server_tools(
    remote: RemoteTools | None, server: str, names: list[str] | None
) -> list[RemoteTool]:
    if remote is None or server not in remote.servers():
        raise RunFailure("user_error", f"unknown MCP server {server!r}")
    try:
        # A server down since it was last listed: the model still sees its tools, and
        # each call it makes fails as a tool error it reads; the run goes on.
        tools = await remote.tools(server, last_known=True)
    except RemoteToolsUnavailable as exc:
        raise RunFailure("tool_error", str(exc)) from None
    if names is None:
        return tools
    by_name = {tool.remote_name: tool for tool in tools}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise RunFailure("user_error", f"MCP server {server!r} has no tool {missing[0]!r}")
    return [by_name[name] for name in names]
