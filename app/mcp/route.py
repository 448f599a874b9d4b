"""The `/mcp` route, which loads the MCP server on its first request.

The MCP SDK's server side is a large import; a service nobody calls over MCP
should not carry it. `McpRoute` is the ASGI app mounted at `/mcp`: the first
request imports `app.mcp.server`, builds the endpoint and starts its session
manager in a task of its own (the manager's task group must be entered and left
by the same task), and every request after goes straight to it. `aclose`, from
the service's lifespan, stops the manager.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from app.runs.service import RunService

if TYPE_CHECKING:
    from app.mcp.server import McpEndpoint

Services = Callable[[], tuple[RunService, async_sessionmaker[AsyncSession]]]


class McpRoute:
    """`services` gives the run service and the sessionmaker once the lifespan has
    made them. The identity middleware checks the caller before this is reached."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._app: ASGIApp | None = None
        self._starting = asyncio.Lock()
        self._stop: asyncio.Event | None = None
        self._serving: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app or await self._start()
        await app(scope, receive, send)

    async def _start(self) -> ASGIApp:
        async with self._starting:
            if self._app is None:
                from app.mcp.server import McpEndpoint

                endpoint = McpEndpoint(self._services)
                ready, self._stop = asyncio.Event(), asyncio.Event()
                # A context of its own: the session manager outlives this request, and
                # must not act as its caller (each request's tools run in its own).
                self._serving = asyncio.create_task(
                    self._serve(endpoint, ready, self._stop), context=contextvars.Context()
                )
                waiting = asyncio.ensure_future(ready.wait())
                await asyncio.wait({waiting, self._serving}, return_when=asyncio.FIRST_COMPLETED)
                waiting.cancel()
                if self._serving.done():  # the session manager could not start
                    serving, self._serving = self._serving, None
                    serving.result()
                self._app = endpoint.app
            return self._app

    @staticmethod
    async def _serve(endpoint: McpEndpoint, ready: asyncio.Event, stop: asyncio.Event) -> None:
        async with endpoint.running():
            ready.set()
            await stop.wait()

    async def aclose(self) -> None:
        if self._serving is not None and self._stop is not None:
            self._stop.set()
            await self._serving
            self._serving = None
