"""One MCP server's session, opened on first use and again after it ended.

The SDK's `Client` lives in a task of its own (its task groups must be left by
the task that entered them); calls from any run share it. The session counts
as ended when its task ends (a transport failure tears the client down), when
the server's side of the stream closes (a stdio server exited), or when a
call answers that the connection or session is gone; the next use opens a new
one (a stdio server is started again). `close` ends the task, which stops a
stdio server's process and closes HTTP connections.

The tool list is cached until the server says it changed: a 2026-era server
through a `subscriptions/listen` stream (held open by the session's task; its
loss ends the session, so a restarted server is listed again), an earlier one
with `notifications/tools/list_changed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CONNECTION_CLOSED,
    CallToolResult,
    Implementation,
    RequestParamsMeta,
    Tool,
    ToolListChangedNotification,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from app.config import McpHttpServer, McpServerConfig
from app.engine.remote import RemoteToolsUnavailable

logger = logging.getLogger(__name__)

CLIENT_INFO = Implementation(name="agentd", version="0.1.0")
MAX_TOOL_PAGES = 100
# The streamable HTTP client's answer for a request in a session the server forgot.
SESSION_GONE = "Session terminated"


class ServerConnection:
    def __init__(self, name: str, config: McpServerConfig) -> None:
        self.name = name
        self.config = config
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        # Each session opened gets the next number; what ends a session names its
        # number, so a late notice about an old session cannot end a newer one.
        self._session_number = 0
        self._ended = True
        self._opening = asyncio.Lock()
        self._tools: list[Tool] | None = None
        self._last_tools: list[Tool] | None = None
        self._tools_changes = 0

    # Using the server ------------------------------------------------------------

    async def tools(self, *, last_known: bool = False) -> list[Tool]:
        """The server's tools (cached until they change); RemoteToolsUnavailable. With
        `last_known`, a server that cannot be reached now answers the list it last gave
        (a call then fails as a tool error the model reads)."""
        if self._tools is not None and not self._ended:
            return self._tools
        try:
            tools = await self._fetch_tools()
        except RemoteToolsUnavailable:
            if last_known and self._last_tools is not None:
                return self._last_tools
            raise
        self._last_tools = tools
        return tools

    async def _fetch_tools(self) -> list[Tool]:
        changes = self._tools_changes
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                client, number = await self._session()
                try:
                    tools = await self._list(client)
                except Exception as exc:
                    self._check_gone(exc, number)
                    raise
        except TimeoutError:
            raise self._unavailable(f"no answer within {self.config.connect_timeout} s") from None
        except RemoteToolsUnavailable:
            raise
        except Exception as exc:
            raise self._unavailable(_describe(exc)) from None
        if changes == self._tools_changes and number == self._session_number:
            self._tools = tools  # no change was announced meanwhile
        return tools

    async def call(
        self, tool: str, arguments: dict[str, Any], meta: dict[str, Any]
    ) -> CallToolResult:
        """Call `tool`; raises RemoteToolsUnavailable (no session could be opened),
        MCPError (the server's error, a timeout) or a transport's exception."""
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                client, number = await self._session()
        except TimeoutError:
            raise self._unavailable(f"no answer within {self.config.connect_timeout} s") from None
        except RemoteToolsUnavailable:
            raise
        except Exception as exc:
            raise self._unavailable(_describe(exc)) from None
        try:
            return await client.call_tool(
                tool,
                arguments,
                read_timeout_seconds=self.config.timeout,
                meta=cast(RequestParamsMeta, meta),
            )
        except Exception as exc:
            self._check_gone(exc, number)
            raise

    async def close(self) -> None:
        task, self._task = self._task, None
        self._client = None
        self._end(self._session_number)
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # The session's task ------------------------------------------------------------

    async def _session(self) -> tuple[Client, int]:
        async with self._opening:
            if self._client is not None and not self._ended:
                return self._client, self._session_number
            await self.close()
            self._session_number += 1
            number = self._session_number
            opened: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            opened.add_done_callback(_retrieve)
            self._ended = False
            self._task = asyncio.create_task(self._hold(opened, number), name=f"mcp:{self.name}")
            try:
                self._client = await asyncio.shield(opened)
            except BaseException:
                await self.close()
                raise
            return self._client, number

    async def _hold(self, opened: asyncio.Future[Client], number: int) -> None:
        """Enter the client, hand it over, then keep it (and the listen stream) open."""
        try:
            client = Client(
                self._transport(number),
                message_handler=self._on_message,
                client_info=CLIENT_INFO,
                cache=None,  # the tool list is cached here, until the server says it changed
            )
            async with client:
                opened.set_result(client)
                await self._watch(client)
        except asyncio.CancelledError:
            if not opened.done():
                opened.set_exception(RuntimeError("the session was closed while opening"))
            raise
        except Exception as exc:
            if not opened.done():
                opened.set_exception(exc)
            else:
                logger.info("MCP server %s: the session ended: %s", self.name, _describe(exc))
        finally:
            self._end(number)

    async def _watch(self, client: Client) -> None:
        """Listen for tool list changes where the server offers it; else just stay open."""
        tools = client.server_capabilities.tools
        if client.protocol_version in MODERN_PROTOCOL_VERSIONS and tools and tools.list_changed:
            async with client.listen(tools_list_changed=True) as changes:
                async for _ in changes:
                    self._forget_tools()
            return  # the server closed the stream: this session is over
        await anyio.sleep_forever()

    def _transport(self, number: int) -> Any:
        config = self.config
        if isinstance(config, McpHttpServer):
            http = httpx2.AsyncClient(
                headers=config.headers,
                timeout=httpx2.Timeout(config.connect_timeout, read=max(config.timeout, 300.0)),
            )
            return _closing(streamable_http_client(config.url, http_client=http), http)
        parameters = StdioServerParameters(
            command=config.command, args=config.args, env=config.env or None, cwd=config.cwd
        )
        return _ending(stdio_client(parameters), lambda: self._end(number))

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, ToolListChangedNotification):
            self._forget_tools()
        elif isinstance(message, Exception):
            logger.info("MCP server %s: %s", self.name, _describe(message))

    # Bookkeeping -------------------------------------------------------------------

    async def _list(self, client: Client) -> list[Tool]:
        tools: list[Tool] = []
        cursor: str | None = None
        for _ in range(MAX_TOOL_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools += page.tools
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    def _forget_tools(self) -> None:
        self._tools = None
        self._tools_changes += 1

    def _end(self, number: int) -> None:
        if number == self._session_number:
            self._ended = True
            self._tools = None

    def _check_gone(self, exc: Exception, number: int) -> None:
        """A request that found the connection or the server's session gone ends ours;
        the server's own errors and timeouts do not."""
        if isinstance(exc, TimeoutError):
            return
        error = exc.error if isinstance(exc, MCPError) else None
        if error is None or error.code == CONNECTION_CLOSED or error.message == SESSION_GONE:
            self._end(number)

    def _unavailable(self, reason: str) -> RemoteToolsUnavailable:
        return RemoteToolsUnavailable(self.name, reason)


def _retrieve(future: asyncio.Future[Client]) -> None:
    """Mark a failure nobody waited for as seen (its opener was cancelled)."""
    if not future.cancelled():
        future.exception()


@asynccontextmanager
async def _closing(transport: Any, http: httpx2.AsyncClient) -> AsyncIterator[Any]:
    async with http, transport as streams:
        yield streams


@asynccontextmanager
async def _ending(transport: Any, on_end: Any) -> AsyncIterator[Any]:
    """The transport, telling `on_end` when the server's side of the stream ends."""
    async with transport as (read_stream, write_stream):
        yield _EndTelling(read_stream, on_end), write_stream


class _EndTelling:
    """A transport's read stream that calls `on_end` at its end of stream."""

    def __init__(self, inner: Any, on_end: Any) -> None:
        self._inner = inner
        self._on_end = on_end

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._on_end()
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __aiter__(self) -> _EndTelling:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> _EndTelling:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _describe(exc: BaseException) -> str:
    """A one-line reason, from inside the exception groups of the SDK's task groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, MCPError) else text
