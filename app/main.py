"""The application: `create_app()` and its lifespan (engine, migrations, the
demo agent, registries, tracing, routers, error handlers)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import Route

from app import health, logs, metrics, migrate, principal
from app.agents import repository as agents_repository
from app.agents import service as agents_service
from app.agents.resolver import StoredAgents
from app.agents.routes import router as agents_router
from app.agents.schemas import AgentCreate
from app.agui.routes import router as agui_router
from app.config import Settings, get_settings
from app.console.routes import router as console_router
from app.db import create_engine, create_sessionmaker
from app.engine.loop import Runner
from app.errors import BodyLimitMiddleware, install_error_handlers
from app.gctune import tuned_gc
from app.identity.docs import document_credentials
from app.identity.keys import StoredKeys
from app.identity.middleware import Authenticator, IdentityMiddleware
from app.identity.routes import router as api_keys_router
from app.mcp.route import McpRoute
from app.memories.routes import router as memories_router
from app.memories.store import StoredMemories
from app.notify import create_notifier
from app.openai_compat.routes import router as openai_router
from app.openapi import install_problem_docs
from app.runs import records as run_records
from app.runs.routes import router as runs_router
from app.runs.service import RunService
from app.runs.sse import server_stopping
from app.runtime import Runtime, build_runtime
from app.sessions.routes import router as sessions_router
from app.sessions.summaries import StoredSummaries
from app.tools_routes import router as tools_router
from app.tracing import plan_tracing, start_tracing
from app.vercel.routes import router as vercel_router
from app.worker.bus import EventBus
from app.worker.manager import RunManager
from app.worker.writer import EventWriter

log = logging.getLogger("agentd")

DEMO_AGENT = AgentCreate(
    id="demo",
    name="Demo",
    description="Echoes your last message back; runs with no model server.",
    instructions="You are a helpful assistant.",
    model="test:echo",
    tools=["current_time", "calculator"],
)


async def seed_demo_agent(maker: async_sessionmaker[AsyncSession], runtime: Runtime) -> None:
    """Create the `demo` agent of the `default` tenant unless it exists."""
    with principal.acting_as(principal.OPERATOR):
        async with maker() as session, session.begin():
            if await agents_repository.get(session, "demo") is None:
                await agents_service.create(session, DEMO_AGENT, runtime.catalog)
                log.info("created the demo agent (test:echo)")


# The routers in the order the OpenAPI document lists their paths.
DOCUMENTED: tuple[APIRouter, ...] = (
    health.router,
    metrics.router,
    console_router,
    agents_router,
    runs_router,
    openai_router,
    agui_router,
    vercel_router,
    sessions_router,
    memories_router,
    tools_router,
    api_keys_router,
)
# The frontends' single routes ahead of the OpenAI router's seven (its models first).
STARTING_RUNS = (runs_router, agui_router, vercel_router, openai_router)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    maker = create_sessionmaker(engine)
    runtime: Runtime = app.state.runtime
    stored_agents = StoredAgents(maker)
    # This app's own tracer provider (never the process-wide one): apps keep apart.
    tracing = start_tracing(app.state.tracing_plan)
    runner = Runner(
        models=runtime.models,
        agents=stored_agents,
        tools=runtime.tools,
        guardrails=runtime.guardrails,
        hooks=runtime.hooks,
        memories=StoredMemories(maker),
        summaries=StoredSummaries(maker),
        remote=runtime.mcp,
        tracer=tracing.tracer,
    )

    async def prepare(session: AsyncSession, run: Any) -> Any:
        return await run_records.prepare(runner, session, run)

    notifier = create_notifier(settings.database_url)
    notifier.on_control(stored_agents.on_control)
    stored_keys = StoredKeys(maker)
    notifier.on_control(stored_keys.on_control)
    app.state.authenticator.stored = stored_keys
    manager = RunManager(
        maker=maker,
        writer=EventWriter(engine.begin),
        runner=runner,
        bus=EventBus(on_change=notifier.wake),
        notifier=notifier,
        prepare=prepare,
        lease_seconds=settings.lease_seconds,
        sweep_interval=settings.sweep_interval,
        max_concurrent_runs=settings.max_concurrent_runs,
        max_attempts=settings.max_run_attempts,
    )
    app.state.engine = engine
    app.state.sessionmaker = maker
    app.state.runner = runner
    app.state.tracing = tracing
    app.state.agents = stored_agents
    app.state.notifier = notifier
    app.state.manager = manager
    app.state.run_service = RunService(
        engine=engine,
        maker=maker,
        manager=manager,
        runner=runner,
        agents=stored_agents,
        server_stopping=server_stopping,
        max_active_runs=settings.tenant_max_active_runs,
    )
    app.state.metrics = metrics.build_registry(
        manager, engine, runtime.models.pacer, tracing.counts
    )
    try:
        if settings.auto_migrate:
            await migrate.upgrade(engine)
        if settings.seed_demo_agent:
            await seed_demo_agent(maker, runtime)
        await runtime.models.preload()
        await notifier.start()
        await manager.start()
        with tuned_gc(settings.gc_threshold, settings.gc_objects_per_run) as young:
            manager.on_load = young.resize if young is not None else None
            try:
                yield
            finally:
                manager.on_load = None
    finally:
        mcp_route: McpRoute = app.state.mcp_route
        await mcp_route.aclose()
        await manager.shutdown()
        await tracing.shutdown()
        await notifier.stop()
        await runtime.aclose()
        await engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logs.configure(settings.log_level, settings.log_format)
    app = FastAPI(
        title="agentd",
        version="0.1.0",
        summary="Runs LLM agents stored in a database over HTTP and SSE.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runtime = build_runtime(settings)
    app.state.tracing_plan = plan_tracing(settings)
    install_error_handlers(app)
    install_problem_docs(app, DOCUMENTED)
    authenticator = Authenticator.from_settings(settings)
    app.state.authenticator = authenticator
    # Routes are matched in order: the ones that start runs come first, the native
    # ones ahead, as most requests start runs (no other route matches their paths);
    # the document lists them in DOCUMENTED's order.
    for router in STARTING_RUNS + tuple(r for r in DOCUMENTED if r not in STARTING_RUNS):
        app.include_router(router)
    mcp_route = McpRoute(lambda: (app.state.run_service, app.state.sessionmaker))
    app.state.mcp_route = mcp_route
    # One route at exactly /mcp (a mount would redirect /mcp to /mcp/).
    app.router.routes.append(
        Route("/mcp", mcp_route, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
    document_credentials(
        app,
        required=bool(settings.api_keys or settings.jwt_secret or settings.jwt_jwks_url),
        disabled=settings.auth_disabled,
    )
    # Outermost last: CORS answers preflights, then credentials, then the body limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(IdentityMiddleware, authenticator=authenticator, shaped=openai_router.routes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["Location"],
        )
    return app


def __getattr__(name: str) -> Any:
    # `uvicorn app.main:app` builds the app on first access, so importing this
    # module (tests, tools) reads no settings.
    if name == "app":
        return create_app()
    raise AttributeError(name)
