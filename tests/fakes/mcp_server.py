"""A real MCP server written with the official SDK, for agentd's MCP client tests.

`python -m tests.fakes.mcp_server stdio` serves it over stdio;
`python -m tests.fakes.mcp_server http PORT` over Streamable HTTP on
127.0.0.1:PORT at /mcp. `garbage-http PORT` and `garbage-stdio` are servers that
answer anything but MCP. Its tools:

- `add(a, b)`: structured content `{"result": a + b}`.
- `echo(text)`: text content.
- `fail(message)`: an `isError` result carrying the message.
- `picture()`: an image and a text block.
- `record(label, seconds)`: one side effect per idempotency key (`_meta`'s
  `agentd/idempotency_key`): every call appends `call <key>` to `$MCP_FAKE_LOG`,
  the first one with a key also `effect <key>`, before sleeping `seconds`
  (default `$MCP_FAKE_RECORD_SECONDS`, so a test can stop agentd mid-call).
- `slow(seconds)`: sleeps, then answers.
- `hang()`: never answers (timeouts).
- `die()`: the process exits mid-call.
- `grow(name)`: registers a tool `name` and announces the changed tool list.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context, Image
from mcp.server.mcpserver.exceptions import ToolError

IDEMPOTENCY_META_KEY = "agentd/idempotency_key"

server = MCPServer("fake")
_seen: set[str] = set()
RECORD_SECONDS = float(os.environ.get("MCP_FAKE_RECORD_SECONDS", "0"))


def _log(line: str) -> None:
    path = os.environ.get("MCP_FAKE_LOG")
    if path:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


@server.tool()
def add(a: int, b: int) -> dict[str, int]:
    """Add two integers."""
    return {"result": a + b}


@server.tool()
def echo(text: str) -> str:
    """Answer the text."""
    return text


@server.tool()
def fail(message: str) -> str:
    """Always fails with the message."""
    raise ToolError(message)


@server.tool(structured_output=False)
def picture() -> list[Any]:
    """A one-pixel image and its caption."""
    return [Image(data=b"\x89PNG\r\n\x1a\n", format="png"), "a pixel"]


@server.tool()
async def record(label: str, ctx: Context, seconds: float = RECORD_SECONDS) -> str:
    """Record one side effect per idempotency key."""
    meta = ctx.request_context.meta or {}
    key = str(meta.get(IDEMPOTENCY_META_KEY, ""))
    _log(f"call {key}")
    if key not in _seen:
        _seen.add(key)
        _log(f"effect {key}")
    await asyncio.sleep(seconds)
    return f"recorded {label}"


@server.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool()
async def hang() -> str:
    """Never answers."""
    await asyncio.sleep(3600)
    return "woke up"


@server.tool()
def die() -> str:
    """Exit the process mid-call."""
    os._exit(3)


@server.tool()
async def grow(name: str, ctx: Context) -> str:
    """Register a new tool named `name` and announce the change."""

    def added() -> str:
        return f"{name} was added"

    server.add_tool(added, name=name, description=f"Added at run time: {name}.")
    await ctx.notify_tools_changed()
    return f"added {name}"


async def garbage_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every HTTP request with a web page."""
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/html")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"<html>not MCP</html>"})


def garbage_stdio() -> None:
    """Answers every line it reads with a line that is not JSON-RPC."""
    for _ in sys.stdin:
        sys.stdout.write("garbage, not JSON\n")
        sys.stdout.flush()


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if mode == "stdio":
        server.run("stdio")
    elif mode == "http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    elif mode == "garbage-http":
        import uvicorn

        uvicorn.run(garbage_app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    else:
        garbage_stdio()


if __name__ == "__main__":
    main()
