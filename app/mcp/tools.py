"""An MCP server's tool as the engine calls it, and its results as tool results.

The input schema goes to the model as the server published it. A result
becomes what the model reads: the structured content when there is some
(and nothing but text beside it), else the text; with images, audio or
resources, the content blocks themselves. An `isError` result, a JSON-RPC
error, a timeout or a broken connection becomes a tool error the model reads;
the run goes on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from mcp.shared.exceptions import MCPError
from mcp.types import (
    AudioContent,
    CallToolResult,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    Tool,
)

from app.engine.remote import RemoteToolsUnavailable
from app.engine.tools import RunContext, ToolOutcome

# The `_meta` key that carries the call's idempotency key (`{run_id}:{tool_call_id}`):
# the same for a call sent again after a crash resumed its run.
IDEMPOTENCY_META_KEY = "agentd/idempotency_key"


class Caller(Protocol):
    async def call(
        self, server: str, tool: str, arguments: dict[str, Any], meta: dict[str, Any]
    ) -> CallToolResult: ...


@dataclass(frozen=True, slots=True)
class McpTool:
    """One tool of one server (a RemoteTool), under the name the model sees."""

    name: str
    server: str
    remote_name: str
    description: str
    parameters: dict[str, Any]
    timeout: float | None
    caller: Caller

    @classmethod
    def of(cls, server: str, tool: Tool, caller: Caller, timeout: float) -> McpTool:
        return cls(
            name=tool.name,
            server=server,
            remote_name=tool.name,
            description=tool.description or tool.title or "",
            parameters=tool.input_schema,
            # The connection's own timeout answers first; this one is the engine's net.
            timeout=timeout + 5,
            caller=caller,
        )

    def renamed(self, name: str) -> McpTool:
        return dataclasses.replace(self, name=name)

    async def call(self, arguments: dict[str, Any], ctx: RunContext) -> ToolOutcome:
        meta = {IDEMPOTENCY_META_KEY: ctx.idempotency_key}
        try:
            result = await self.caller.call(self.server, self.remote_name, arguments, meta)
        except RemoteToolsUnavailable as exc:
            return ToolOutcome(error=f"tool {self.name}: {exc}")
        except MCPError as exc:
            return ToolOutcome(error=f"tool {self.name} failed: {exc.error.message}")
        return outcome_of(result)


def outcome_of(result: CallToolResult) -> ToolOutcome:
    """The tool result the model reads."""
    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    if result.is_error:
        return ToolOutcome(error="\n".join(texts) or "the tool reported an error")
    others = [block for block in result.content if not isinstance(block, TextContent)]
    if not others:
        if result.structured_content is not None:
            return ToolOutcome(result=result.structured_content)
        return ToolOutcome(result="\n".join(texts))
    body: dict[str, Any] = {"content": [block_json(block) for block in result.content]}
    if result.structured_content is not None:
        body["structured_content"] = result.structured_content
    return ToolOutcome(result=body)


def block_json(block: ContentBlock) -> dict[str, Any]:
    """One content block as plain JSON."""
    if isinstance(block, TextContent):
        return {"type": "text", "text": block.text}
    if isinstance(block, ImageContent | AudioContent):
        return {"type": block.type, "mime_type": block.mime_type, "data": block.data}
    if isinstance(block, ResourceLink):
        return {"type": "resource_link", "uri": str(block.uri), "name": block.name}
    if isinstance(block, EmbeddedResource):
        return {"type": "resource", **block.resource.model_dump(mode="json", exclude_none=True)}
    dumped: dict[str, Any] = block.model_dump(mode="json", exclude_none=True)
    return dumped
