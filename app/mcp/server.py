"""agentd as an MCP server at `/mcp`: the stored agents as tools for any MCP client.

An adapter over the run service like every protocol: `run_agent` is a
blocking run (`RunService.create`, then `wait`, which cancels the run when the
client goes away), `get_run` reads a run's output, `list_agents` lists the
stored agents. Streamable HTTP through the SDK's session manager, stateless
(any replica answers any request, nothing is kept between requests) and
answering JSON; the session manager runs for as long as the service does
(`McpEndpoint.running`, entered in the service's lifespan). The identity
middleware checks the caller's credentials as for `/v1`; each tool then needs
its scope (`agents:read`, `runs:write`, `runs:read`) and sees the caller's
tenant only, as every route does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp

from app import principal
from app.agents import repository as agents_repository
from app.engine.spec import AGENT_ID_PATTERN
from app.errors import AppError
from app.runs.schemas import SESSION_ID_PATTERN, InputMessage, RunCreate
from app.runs.service import RunService

INSTRUCTIONS = (
    "Runs the agents stored in this agentd: list them with list_agents, run one with "
    "run_agent (its answer is the result; pass session_id to continue a conversation), "
    "read a run with get_run."
)
AGENTS_PAGE = 200


class McpEndpoint:
    """The MCP server, its ASGI app for `/mcp`, and the session manager's lifetime.

    `services` gives the run service and the sessionmaker once the lifespan has
    made them.
    """

    def __init__(
        self, services: Callable[[], tuple[RunService, async_sessionmaker[AsyncSession]]]
    ) -> None:
        self.server = build_server(services)
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            # agentd checks its callers itself (API keys), whatever the Host header says.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.app: ASGIApp = StreamableHTTPASGIApp(self.server.session_manager)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.server.session_manager.run():
            yield


def build_server(
    services: Callable[[], tuple[RunService, async_sessionmaker[AsyncSession]]],
) -> MCPServer:
    server = MCPServer("agentd", instructions=INSTRUCTIONS, version="0.1.0")

    @server.tool()
    async def list_agents() -> dict[str, Any]:
        """The stored agents: id, name, description, model and version of each."""
        _allowed("agents:read")
        _, maker = services()
        agents: list[dict[str, Any]] = []
        after: str | None = None
        async with maker() as session:
            while True:
                page = await agents_repository.list_page(session, limit=AGENTS_PAGE, after=after)
                agents += [_agent_summary(agent.id, agent.version, agent.spec) for agent in page]
                if len(page) < AGENTS_PAGE:
                    return {"agents": agents}
                after = page[-1].id

    @server.tool()
    async def run_agent(
        agent_id: Annotated[str, Field(pattern=AGENT_ID_PATTERN, description="The agent's id.")],
        input: Annotated[
            str | list[InputMessage] | dict[str, Any],
            Field(description="A message, a list of messages {role, content}, or an object."),
        ],
        session_id: Annotated[
            str | None,
            Field(
                pattern=SESSION_ID_PATTERN,
                description="Continue this conversation (a new id starts one).",
            ),
        ] = None,
    ) -> str:
        """Run an agent and answer its reply (JSON text for structured output)."""
        runs, _ = services()
        try:
            body = RunCreate(input=input, session_id=session_id)
            started = await runs.create(agent_id, body)
        except (AppError, ValidationError) as exc:
            raise ToolError(_message(exc)) from None
        output = await runs.wait(started.run, 0, cancel_if_abandoned=True)
        return _answer(output)

    @server.tool()
    async def get_run(
        run_id: Annotated[str, Field(max_length=64, description="The run's id.")],
    ) -> dict[str, Any]:
        """A run as GET /v1/runs/{run_id} answers it: status, content, messages, tools..."""
        _allowed("runs:read")
        runs, _ = services()
        try:
            output = await runs.output(run_id)
        except AppError as exc:
            raise ToolError(_message(exc)) from None
        result: dict[str, Any] = output.model_dump(mode="json")
        return result

    return server


def _allowed(scope: str) -> None:
    try:
        principal.require(scope)
    except AppError as exc:
        raise ToolError(_message(exc)) from None


def _agent_summary(agent_id: str, version: int, spec: dict[str, Any]) -> dict[str, Any]:
    model = spec.get("model")
    if isinstance(model, dict):
        model = f"{model.get('provider')}:{model.get('name')}"
    return {
        "id": agent_id,
        "name": spec.get("name", ""),
        "description": spec.get("description", ""),
        "model": model,
        "version": version,
    }


def _answer(output: dict[str, Any]) -> str:
    """The run's reply, or a tool error saying why there is none."""
    status, run_id = output["status"], output["run_id"]
    if status == "completed":
        content = output["content"]
        return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    if status == "paused":
        pending = ", ".join(req["tool_name"] for req in output.get("requirements", []))
        raise ToolError(
            f"run {run_id} paused, waiting for a person to answer its calls of {pending}: "
            f"continue it with POST /v1/runs/{run_id}/continue"
        )
    error = output.get("error") or {}
    reason = error.get("message") or status
    raise ToolError(f"run {run_id} ended {status}: {reason}")


def _message(exc: AppError | ValidationError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors or []]
    return "; ".join([str(exc.detail or exc.title), *problems])
