"""Agent definitions: create, edit, delete, with every check that can be made
at definition time (providers, tools, handoffs, guardrails, JSON Schemas)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import principal
from app.agents import repository
from app.agents.schemas import AgentCreate, AgentRead, AgentUpdate, AgentVersionRead
from app.db import utcnow
from app.engine.remote import RemoteTools, RemoteToolsUnavailable
from app.engine.spec import (
    AgentFields,
    AgentSpec,
    ClientTool,
    McpToolUse,
    ModelRef,
    ToolUse,
    mcp_use,
    split_model,
)
from app.engine.structured import schema_errors
from app.errors import AgentExists, AgentNotFound, McpServerUnreachable, ValidationFailed
from app.ids import new_id
from app.tables import Agent, AgentVersion


@dataclass(frozen=True, slots=True)
class Catalog:
    """What definitions may name: model providers, registered tools and guardrails,
    and the MCP servers' tools (`remote`, asked when a definition names them)."""

    providers: frozenset[str]
    tools: frozenset[str]
    guardrails: frozenset[str] = frozenset()
    hooks: frozenset[str] = frozenset()
    test_models: frozenset[str] = field(default_factory=frozenset)
    remote: RemoteTools | None = None


def _problem(loc: list[str | int], msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


def _schema_errors(schema: dict[str, Any] | None, loc: list[str | int]) -> list[dict[str, Any]]:
    if schema is None:
        return []
    return [
        _problem(loc, f"invalid JSON Schema: {message}", "json_schema")
        for message in schema_errors(schema)
    ]


def _model_errors(
    loc: list[str | int], model: str | ModelRef, catalog: Catalog
) -> list[dict[str, Any]]:
    try:
        provider, name = split_model(model)
    except ValueError as exc:
        return [_problem(loc, str(exc))]
    if provider not in catalog.providers:
        known = ", ".join(sorted(catalog.providers))
        return [_problem(loc, f"unknown model provider {provider!r} ({known})")]
    if provider == "test" and catalog.test_models and name not in catalog.test_models:
        known = ", ".join(sorted(catalog.test_models))
        return [_problem(loc, f"unknown test model {name!r} ({known})")]
    return []


def static_errors(fields: AgentFields, catalog: Catalog) -> list[dict[str, Any]]:
    """Problems a definition has on its own, before looking at other agents."""
    errors = _model_errors(["model"], fields.model, catalog)
    if fields.memory.model is not None:
        errors += _model_errors(["memory", "model"], fields.memory.model, catalog)
    for role in ("parser_model", "output_model"):
        ref = getattr(fields, role)
        if ref is not None:
            errors += _model_errors([role], ref, catalog)
    if fields.session_summary.model is not None:
        errors += _model_errors(["session_summary", "model"], fields.session_summary.model, catalog)
    seen: set[str] = set()
    for index, entry in enumerate(fields.tools):
        if mcp_use(entry) is not None:
            continue  # checked against the server's tools (mcp_errors)
        assert not isinstance(entry, McpToolUse)
        name = entry if isinstance(entry, str) else entry.name
        if name in seen:
            errors.append(_problem(["tools", index], f"tool {name!r} is listed twice"))
        seen.add(name)
        if isinstance(entry, ClientTool):
            errors += _schema_errors(entry.parameters, ["tools", index, "parameters"])
        elif name not in catalog.tools:
            errors.append(_problem(["tools", index], f"unknown tool {name!r}", "unknown_tool"))
        if isinstance(entry, ToolUse) and entry.requires_confirmation and entry.requires_user_input:
            errors.append(
                _problem(["tools", index], "choose requires_confirmation or requires_user_input")
            )
    errors += _schema_errors(fields.output_schema, ["output_schema"])
    errors += _schema_errors(fields.input_schema, ["input_schema"])
    for stage in ("input_guardrails", "output_guardrails"):
        for index, guardrail in enumerate(getattr(fields, stage)):
            if guardrail.type == "python" and guardrail.name not in catalog.guardrails:
                errors.append(
                    _problem([stage, index, "name"], f"unknown guardrail {guardrail.name!r}")
                )
    for stage in ("pre_hooks", "post_hooks"):
        for index, name in enumerate(getattr(fields, stage)):
            if name not in catalog.hooks:
                known = ", ".join(sorted(catalog.hooks))
                errors.append(
                    _problem([stage, index], f"unknown hook {name!r} ({known})", "unknown_hook")
                )
    return errors


async def mcp_errors(fields: AgentFields, catalog: Catalog) -> list[dict[str, Any]]:
    """Problems with the MCP tools a definition names, each server's tools listed
    once: an unknown server or tool, a tool named twice, an unreachable server."""
    errors: list[dict[str, Any]] = []
    listed: dict[str, list[str] | RemoteToolsUnavailable] = {}
    seen: set[tuple[str, str]] = set()
    servers = catalog.remote.servers() if catalog.remote is not None else []
    for index, entry in enumerate(fields.tools):
        use = mcp_use(entry)
        if use is None:
            continue
        loc: list[str | int] = ["tools", index]
        if use.server not in servers:
            known = ", ".join(servers) or "none configured"
            message = f"unknown MCP server {use.server!r} ({known})"
            errors.append(_problem(loc, message, "unknown_mcp_server"))
            continue
        assert catalog.remote is not None
        if use.server not in listed:
            try:
                listed[use.server] = [t.remote_name for t in await catalog.remote.tools(use.server)]
            except RemoteToolsUnavailable as exc:
                listed[use.server] = exc
        names = listed[use.server]
        if isinstance(names, RemoteToolsUnavailable):
            error = _problem(loc, str(names), McpServerUnreachable.code)
            errors.append({**error, "server": use.server})
            continue
        wanted = names if use.tools is None else use.tools
        confirmed = use.requires_confirmation
        for name in [*wanted, *(confirmed if isinstance(confirmed, list) else [])]:
            if name not in names:
                message = f"MCP server {use.server!r} has no tool {name!r}"
                errors.append(_problem(loc, message, "unknown_tool"))
            elif name not in wanted:
                message = f"requires_confirmation names {name!r}, which is not in tools"
                errors.append(_problem(loc, message))
        for name in wanted:
            if (use.server, name) in seen:
                message = f"tool {name!r} of MCP server {use.server!r} is listed twice"
                errors.append(_problem(loc, message))
            seen.add((use.server, name))
    return errors


async def _reference_errors(
    session: AsyncSession, agent_id: str, fields: AgentFields
) -> list[dict[str, Any]]:
    """Problems with the other agents a definition names (handoffs, agent guardrails)."""
    guardrail_refs: list[tuple[list[str | int], str]] = [
        ([stage, index, "agent_id"], g.agent_id)
        for stage in ("input_guardrails", "output_guardrails")
        for index, g in enumerate(getattr(fields, stage))
        if g.type == "agent"
    ]
    handoff_refs: list[tuple[list[str | int], str]] = [
        (["handoffs", index], target) for index, target in enumerate(fields.handoffs)
    ]
    refs = handoff_refs + guardrail_refs
    found = await repository.existing_ids(session, [target for _, target in refs])
    errors = []
    for loc, target in refs:
        if target == agent_id:
            errors.append(_problem(loc, "an agent cannot name itself here"))
        elif target not in found:
            errors.append(_problem(loc, f"unknown agent {target!r}", "unknown_agent"))
    return errors


async def _validate(
    session: AsyncSession, agent_id: str, fields: AgentFields, catalog: Catalog
) -> None:
    errors = static_errors(fields, catalog) + await _reference_errors(session, agent_id, fields)
    errors += await mcp_errors(fields, catalog)
    unreachable = [error for error in errors if error["type"] == McpServerUnreachable.code]
    if unreachable:
        servers = sorted({error["server"] for error in unreachable})
        raise McpServerUnreachable(
            unreachable[0]["msg"],
            errors=errors,
            extra={"servers": servers},
        )
    if errors:
        raise ValidationFailed("The agent definition is invalid.", errors=errors)


def to_read(agent: Agent) -> AgentRead:
    return AgentRead.model_validate(
        {
            **agent.spec,
            "id": agent.id,
            "version": agent.version,
            "created_at": agent.created_at,
            "updated_at": agent.updated_at,
        }
    )


def version_read(row: AgentVersion) -> AgentVersionRead:
    return AgentVersionRead.model_validate(
        {**row.spec, "id": row.agent_id, "version": row.version, "created_at": row.created_at}
    )


async def get_version(session: AsyncSession, agent_id: str, version: int) -> AgentVersion:
    row = await repository.get_version(session, agent_id, version)
    if row is None:
        raise AgentNotFound(f"Agent {agent_id!r} has no version {version}.")
    return row


_PARSED: dict[tuple[str, int], tuple[dict[str, Any], AgentSpec]] = {}
_PARSED_MAX = 1024


def spec_of(agent_id: str, version: int, spec: dict[str, Any]) -> AgentSpec:
    """The engine's spec of a stored definition. Parsed once per version and
    definition (the stored JSON is compared: an agent deleted and created again
    starts at version 1 with a new definition); treat the result as read-only."""
    key = (agent_id, version)
    parsed = _PARSED.get(key)
    if parsed is not None and parsed[0] == spec:
        return parsed[1]
    result = AgentSpec.model_validate({**spec, "id": agent_id, "version": version})
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.pop(next(iter(_PARSED)))
    _PARSED[key] = (spec, result)
    return result


async def create(session: AsyncSession, body: AgentCreate, catalog: Catalog) -> Agent:
    agent_id = body.id or new_id()
    if await repository.get(session, agent_id) is not None:
        raise AgentExists(f"Agent {agent_id!r} already exists.")
    fields = AgentFields.model_validate(body.model_dump(exclude={"id"}))
    await _validate(session, agent_id, fields, catalog)
    spec = fields.model_dump(mode="json")
    now = utcnow()
    tenant_id = principal.tenant()
    agent = Agent(
        tenant_id=tenant_id,
        id=agent_id,
        name=fields.name,
        version=1,
        spec=spec,
        created_at=now,
        updated_at=now,
    )
    session.add(agent)
    session.add(
        AgentVersion(tenant_id=tenant_id, agent_id=agent_id, version=1, spec=spec, created_at=now)
    )
    try:
        await session.flush()
    except IntegrityError:
        raise AgentExists(f"Agent {agent_id!r} already exists.") from None
    return agent


async def get(session: AsyncSession, agent_id: str) -> Agent:
    agent = await repository.get(session, agent_id)
    if agent is None:
        raise AgentNotFound(f"No agent {agent_id!r}.")
    return agent


async def update(
    session: AsyncSession, agent_id: str, body: AgentUpdate, catalog: Catalog
) -> Agent:
    """Apply a partial change as a new version (a body with no fields changes nothing)."""
    agent = await repository.get(session, agent_id, for_update=True)
    if agent is None:
        raise AgentNotFound(f"No agent {agent_id!r}.")
    changes = body.changes()
    if not changes:
        return agent
    try:
        fields = AgentFields.model_validate({**agent.spec, **changes})
    except ValidationError as exc:
        errors = [_problem(list(e["loc"]), e["msg"], e["type"]) for e in exc.errors()]
        raise ValidationFailed("The agent definition is invalid.", errors=errors) from None
    await _validate(session, agent_id, fields, catalog)
    spec = fields.model_dump(mode="json")
    now = utcnow()
    agent.version += 1
    agent.spec = spec
    agent.name = fields.name
    agent.updated_at = now
    session.add(
        AgentVersion(
            tenant_id=agent.tenant_id,
            agent_id=agent_id,
            version=agent.version,
            spec=spec,
            created_at=now,
        )
    )
    await session.flush()
    return agent


async def delete(session: AsyncSession, agent_id: str) -> None:
    agent = await repository.get(session, agent_id, for_update=True)
    if agent is None:
        raise AgentNotFound(f"No agent {agent_id!r}.")
    await session.delete(agent)
    await session.flush()
