"""What the active agent sends to its model: system message, tools, request.

`RunScope` is the live view of one `Runner.stream` call: the state, the active
agent with its resolved tools and its span, the timers, and the event factory
that stamps every event with run_id, session_id and the active agent_id.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import orjson

from app.engine import jsontext
from app.engine.errors import RunFailure
from app.engine.events import BaseEvent
from app.engine.memory import memories_context
from app.engine.models.base import ModelRequest, ToolDefinition
from app.engine.remote import RemoteTool, RemoteTools, remote_definition, remote_slots
from app.engine.spec import (
    AgentSpec,
    ClientTool,
    McpToolUse,
    ModelRef,
    ToolUse,
    mcp_use,
    split_model,
)
from app.engine.state import RunState
from app.engine.structured import output_schema
from app.engine.summary import summary_context
from app.engine.tools import AnyTool, ToolRegistry
from app.engine.tracing import NO_SPAN, NO_TRACE, RunTrace, Span

E = TypeVar("E", bound=BaseEvent)

HANDOFF_PREFIX = "transfer_to_"
MAX_TOOL_NAME = 64  # what OpenAI's and Anthropic's APIs accept


def handoff_tool_name(agent_id: str) -> str:
    """The name of the tool that hands over to `agent_id`: `transfer_to_<id>`, or,
    past the providers' 64 characters, the id's start and a hash of all of it."""
    name = HANDOFF_PREFIX + agent_id
    if len(name) <= MAX_TOOL_NAME:
        return name
    digest = hashlib.sha256(agent_id.encode()).hexdigest()[:8]
    keep = MAX_TOOL_NAME - len(HANDOFF_PREFIX) - len(digest) - 1
    return f"{HANDOFF_PREFIX}{agent_id[:keep]}_{digest}"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Not an event: the state to persist before the events that follow are announced.

    `state` is the live object; persist it before pulling the next item. With
    `final`, the events that follow end the run and nothing else happens before
    them: the state may be persisted with the run's end instead.
    """

    state: RunState
    final: bool = False


@dataclass(slots=True)
class ToolSlot:
    """One tool as the active agent uses it."""

    kind: Literal["server", "client", "handoff"]
    definition: ToolDefinition
    tool: AnyTool | RemoteTool | None = None
    requires_confirmation: bool = False
    user_input_fields: list[str] | None = None  # set when the user supplies arguments
    target: AgentSpec | None = None  # handoff target


async def resolve_tools(
    spec: AgentSpec,
    registry: ToolRegistry,
    get_agent: Callable[[str], Awaitable[AgentSpec]],
    client_tools: Sequence[ClientTool] = (),
    remote: RemoteTools | None = None,
) -> dict[str, ToolSlot]:
    """The agent's tools and handoffs by the name the model sees, then the run's own
    client tools (`client_tools`); raises RunFailure (user_error; tool_error when an
    MCP server's tools cannot be had)."""
    slots: dict[str, ToolSlot] = {}
    mcp_uses: list[McpToolUse] = []
    for entry in [*spec.tools, *client_tools]:
        mcp = mcp_use(entry)
        if mcp is not None:
            mcp_uses.append(mcp)
            continue
        if isinstance(entry, ClientTool):
            definition = ToolDefinition(entry.name, entry.description, entry.parameters)
            slots[entry.name] = ToolSlot("client", definition)
            continue
        assert not isinstance(entry, McpToolUse)
        use = entry if isinstance(entry, ToolUse) else ToolUse(name=entry)
        try:
            tool = registry.get(use.name)
        except KeyError:
            raise RunFailure(
                "user_error", f"agent {spec.id!r} uses unknown tool {use.name!r}"
            ) from None
        slot = ToolSlot("server", tool.definition(), tool, use.requires_confirmation)
        if use.requires_user_input:
            fields = use.user_input_fields
            slot.user_input_fields = (
                list(tool.parameters["properties"]) if fields is None else fields
            )
            slot.definition = ToolDefinition(
                tool.name,
                tool.description,
                _without_required(tool.parameters, slot.user_input_fields),
            )
        slots[tool.name] = slot
    taken = set(slots) | {handoff_tool_name(target_id) for target_id in spec.handoffs}
    for found, confirms in await remote_slots(mcp_uses, remote, taken):
        slots[found.name] = ToolSlot("server", remote_definition(found), found, confirms)
    for target_id in spec.handoffs:
        try:
            target = await get_agent(target_id)
        except KeyError:
            raise RunFailure("user_error", f"handoff target {target_id!r} not found") from None
        name = handoff_tool_name(target.id)
        description = (
            target.handoff_description
            or target.description
            or f"Hand the conversation over to the {target.name or target.id} agent."
        )
        parameters = {"type": "object", "properties": {}, "additionalProperties": False}
        slots[name] = ToolSlot(
            "handoff", ToolDefinition(name, description, parameters), target=target
        )
    return slots


def _without_required(schema: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """The schema the model sees: the user's fields become optional."""
    required = [name for name in schema.get("required", []) if name not in fields]
    return {**schema, "required": required}


def user_input_schema(schema: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """JSON Schema of the arguments the user supplies."""
    properties = schema.get("properties", {})
    result: dict[str, Any] = {
        "type": "object",
        "properties": {name: properties[name] for name in fields if name in properties},
        "required": [name for name in schema.get("required", []) if name in fields],
        "additionalProperties": False,
    }
    if "$defs" in schema:
        result["$defs"] = schema["$defs"]
    return result


def system_message(spec: AgentSpec, state: RunState) -> dict[str, Any] | None:
    parts = [spec.instructions_text] if spec.instructions_text else []
    if state.overrides.instructions:
        parts.append(state.overrides.instructions)
    if spec.add_session_state_to_context:
        body = jsontext.dumps(state.session_state, option=orjson.OPT_SORT_KEYS).decode()
        parts.append(f"<session_state>\n{body}\n</session_state>")
    if state.user_memories and spec.memory.active and spec.memory.add_to_context:
        parts.append(memories_context(state.user_memories, with_ids=spec.memory.agentic))
    summaries = spec.session_summary
    if state.session_summary is not None and summaries.enabled and summaries.add_to_context:
        parts.append(summary_context(state.session_summary))
    return {"role": "system", "content": "\n\n".join(parts)} if parts else None


def effective_model(spec: AgentSpec, state: RunState) -> tuple[str, str, dict[str, Any]]:
    """(provider, model name, settings) for the active agent, overrides applied."""
    model = state.overrides.model or spec.model
    settings = dict(spec.model_settings)
    if isinstance(model, ModelRef):
        settings.update(model.settings)
    settings.update(state.overrides.model_settings or {})
    provider, name = split_model(model)
    return provider, name, settings


def auxiliary_model(
    ref: str | ModelRef | None, spec: AgentSpec, state: RunState
) -> tuple[str, str, dict[str, Any]]:
    """(provider, model name, settings) of a model in another role (memory, summary,
    parser, output): `ref`, or the agent's own model when None. Raises ValueError."""
    if ref is None:
        return effective_model(spec, state)
    provider, name = split_model(ref)
    return provider, name, dict(ref.settings) if isinstance(ref, ModelRef) else {}


def effective_output_schema(spec: AgentSpec, state: RunState) -> dict[str, Any] | None:
    return state.overrides.output_schema or spec.output_schema


def build_request(spec: AgentSpec, state: RunState, slots: dict[str, ToolSlot]) -> ModelRequest:
    _, name, settings = effective_model(spec, state)
    system = system_message(spec, state)
    # With a parser or an output model the main model answers freely.
    schema = (
        None if spec.parser_model or spec.output_model else effective_output_schema(spec, state)
    )
    return ModelRequest(
        model=name,
        messages=([system] if system else []) + [dict(m) for m in state.messages],
        tools=[slot.definition for slot in slots.values()],
        output_schema=output_schema(schema) if schema is not None else None,
        settings=settings,
        stream=state.streaming,
    )


def stamp(state: RunState, cls: type[E], **fields: Any) -> E:
    """An event of the run, from its active agent unless `agent_id` is given."""
    fields.setdefault("agent_id", state.active_agent_id)
    return cls(run_id=state.run_id, session_id=state.session_id, **fields)


@dataclass(slots=True)
class RunScope:
    """One `Runner.stream` call: the state, the active agent, timing and event stamping."""

    state: RunState
    spec: AgentSpec
    slots: dict[str, ToolSlot]
    depth: int = 0
    trace: RunTrace = NO_TRACE
    agent_span: Span = NO_SPAN  # the active agent's
    # What the agents' spans hang under: None for the execution's root, or the span
    # of the guardrail whose classifier agent this call runs.
    parent_span: Span | None = None
    started: float = field(default_factory=time.monotonic)
    base_duration: float = 0.0

    def __post_init__(self) -> None:
        self.base_duration = self.state.metrics.duration

    def event(self, cls: type[E], **fields: Any) -> E:
        return stamp(self.state, cls, **fields)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def checkpoint(self, *, final: bool = False) -> Checkpoint:
        self.state.metrics.duration = round(self.base_duration + self.elapsed(), 6)
        return Checkpoint(self.state, final)
