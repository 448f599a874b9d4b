"""Test doubles and helpers for the engine: resolvers, a scripted model, run collection."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from app.engine.context import Checkpoint
from app.engine.events import BaseEvent, RunCompleted, RunErrorEvent
from app.engine.guardrails import GuardrailRegistry
from app.engine.hooks import HookRegistry, default_hooks
from app.engine.loop import Runner
from app.engine.models.base import (
    ContentDelta,
    FinishDelta,
    ModelClient,
    ModelDelta,
    ModelRequest,
    ToolCallDelta,
    UsageDelta,
)
from app.engine.models.test import TestModel
from app.engine.spec import AgentSpec
from app.engine.state import RunState
from app.engine.tools import ToolRegistry

CREATED_AT = "2025-01-01T00:00:00.000Z"


def agent(id: str = "a", **fields: Any) -> AgentSpec:
    fields.setdefault("model", "test:echo")
    return AgentSpec(id=id, **fields)


class Agents:
    """An AgentResolver over a dict."""

    def __init__(self, *specs: AgentSpec) -> None:
        self.specs: dict[tuple[str, int], AgentSpec] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: AgentSpec) -> None:
        self.specs[(spec.id, spec.version)] = spec

    async def get_agent(self, agent_id: str, version: int | None = None) -> AgentSpec:
        versions = [v for (i, v) in self.specs if i == agent_id]
        if not versions or (version is not None and version not in versions):
            raise KeyError(agent_id)
        return self.specs[(agent_id, version if version is not None else max(versions))]


class Models:
    """A ModelResolver: `test` is the TestModel unless replaced."""

    def __init__(self, **clients: ModelClient) -> None:
        self.clients: dict[str, ModelClient] = {"test": TestModel(), **clients}

    def providers(self) -> set[str]:
        return set(self.clients)

    def client(self, provider: str) -> ModelClient:
        return self.clients[provider]


Reply = str | list[ModelDelta]


class ScriptedModel:
    """A FunctionModel-like double: `respond(request, call_index)` gives each answer.

    Pass a list of replies to answer them in order; every request is recorded.
    """

    def __init__(self, respond: Callable[[ModelRequest, int], Reply] | list[Reply]) -> None:
        if isinstance(respond, list):
            replies = respond
            self.respond: Callable[[ModelRequest, int], Reply] = lambda _, i: replies[i]
        else:
            self.respond = respond
        self.requests: list[ModelRequest] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelDelta]:
        self.requests.append(copy.deepcopy(request))
        reply = self.respond(request, len(self.requests) - 1)
        deltas = text_reply(reply) if isinstance(reply, str) else reply
        for delta in deltas:
            yield delta

    async def aclose(self) -> None:
        return None


class Recorder:
    """Wraps a client and records its requests."""

    def __init__(self, inner: ModelClient) -> None:
        self.inner = inner
        self.requests: list[ModelRequest] = []

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelDelta]:
        self.requests.append(copy.deepcopy(request))
        return self.inner.stream(request)

    async def aclose(self) -> None:
        return None


def text_reply(text: str) -> list[ModelDelta]:
    return [ContentDelta(text), UsageDelta(1, 1), FinishDelta("stop")]


def calls_reply(*calls: tuple[str, str, str]) -> list[ModelDelta]:
    """Tool calls as (id, name, arguments JSON)."""
    deltas: list[ModelDelta] = [
        ToolCallDelta(i, id=call_id, name=name, arguments=args)
        for i, (call_id, name, args) in enumerate(calls)
    ]
    return [*deltas, UsageDelta(1, 1), FinishDelta("tool_calls")]


def make_runner(
    *specs: AgentSpec,
    tools: Iterable[Any] = (),
    guardrails: GuardrailRegistry | None = None,
    models: Models | None = None,
    max_output_retries: int = 2,
    hooks: HookRegistry = default_hooks,
    **services: Any,
) -> Runner:
    return Runner(
        models=models or Models(),
        agents=Agents(*specs),
        tools=tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools),
        guardrails=guardrails or GuardrailRegistry(),
        hooks=hooks,
        max_output_retries=max_output_retries,
        **services,
    )


@dataclass
class Result:
    items: list[Any]
    state: RunState
    # The state as JSON at each checkpoint, as the service would persist it.
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    events: list[BaseEvent | RunCompleted] = field(init=False)

    def __post_init__(self) -> None:
        self.events = [i for i in self.items if not isinstance(i, Checkpoint)]

    @property
    def names(self) -> list[str]:
        """Event names, with "Checkpoint" where the loop checkpointed."""
        return ["Checkpoint" if isinstance(i, Checkpoint) else i.event for i in self.items]

    @property
    def last(self) -> Any:
        return self.events[-1]

    def of(self, name: str) -> list[Any]:
        return [e for e in self.events if e.event == name]

    def snapshot_before(self, item: Any) -> dict[str, Any]:
        """The state persisted at the last checkpoint before `item`."""
        index = next(i for i, x in enumerate(self.items) if x is item)
        position = sum(1 for x in self.items[:index] if isinstance(x, Checkpoint))
        return self.snapshots[position - 1]

    @property
    def error(self) -> RunErrorEvent:
        assert isinstance(self.last, RunErrorEvent), self.names
        return self.last


async def collect(runner: Runner, state: RunState) -> Result:
    items: list[Any] = []
    snapshots: list[dict[str, Any]] = []
    async for item in runner.stream(state):
        if isinstance(item, Checkpoint):
            snapshots.append(item.state.model_dump(mode="json"))
        items.append(item)
    return Result(items, state, snapshots)


def new_state(runner: Runner, spec: AgentSpec, input: Any = "hi", **options: Any) -> RunState:
    return runner.new_state(
        spec,
        input,
        run_id="run-1",
        session_id="sess-1",
        user_id="user-1",
        created_at=CREATED_AT,
        **options,
    )


async def run(runner: Runner, spec: AgentSpec, input: Any = "hi", **options: Any) -> Result:
    return await collect(runner, new_state(runner, spec, input, **options))


def collapse(names: list[str], name: str = "RunContent") -> list[str]:
    """Runs of the same `name` collapsed to one entry: content streaming is chunked."""
    out: list[str] = []
    for item in names:
        if not (item == name and out and out[-1] == name):
            out.append(item)
    return out
