"""The memory work of a run: the user's memories read for the context, the
memory model's update after the answer, and the agentic mode's tools.

The update is part of the run, between `RunContentCompleted` and the terminal
event, framed by `MemoryUpdateStarted` / `MemoryUpdateCompleted`. What the
memory model decided is kept in the state (`memory_changes`) and applied with
ids derived from the run, so a run resumed after a crash neither asks the model
again once it answered nor stores a memory twice. A failed call of the memory
model is logged and said in `MemoryUpdateCompleted.error`; the run completes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson

from app.engine.auxiliary import ask, work_failed
from app.engine.context import Checkpoint, RunScope, ToolSlot, auxiliary_model
from app.engine.errors import RunFailure
from app.engine.events import MemoryUpdateCompleted, MemoryUpdateStarted, RunEvent
from app.engine.inputs import input_text
from app.engine.memory import (
    MEMORY_TOOLS,
    MemoryChange,
    MemoryStore,
    changes_of,
    manager_request,
)
from app.engine.models.base import ModelClient, ModelProviderError
from app.engine.spec import AgentSpec
from app.engine.state import RunState
from app.engine.tools import AnyTool, RunContext, Tool

NO_USER = "no_user_id"


class MemoryManager:
    """Reads and updates users' memories through `store` (None: memory is off)."""

    def __init__(self, store: MemoryStore | None, client: Callable[[str], ModelClient]) -> None:
        self.store = store
        self.client = client
        self.tools: dict[str, AnyTool] = {} if store is None else _agentic_tools(store)

    def wants_context(self, spec: AgentSpec, state: RunState) -> bool:
        """The user's memories go into this model call's system message, and are not read yet."""
        return (
            state.user_memories is None
            and spec.memory.active
            and spec.memory.add_to_context
            and state.user_id is not None
            and self.store is not None
        )

    async def load_context(self, state: RunState) -> None:
        assert self.store is not None and state.user_id is not None
        state.user_memories = await self.store.list_memories(state.user_id)

    @staticmethod
    def updates_after(spec: AgentSpec, state: RunState) -> bool:
        """The run ends with a memory update (or with saying why there is none)."""
        if state.memory_updated or not spec.memory.active:
            return False
        return not spec.memory.agentic or state.user_id is None

    def slots(self, spec: AgentSpec, state: RunState) -> dict[str, ToolSlot]:
        """The agentic mode's tools, for a run that has a user."""
        if not (spec.memory.agentic and state.user_id is not None and self.tools):
            return {}
        return {name: ToolSlot("server", t.definition(), t) for name, t in self.tools.items()}

    async def update(self, scope: RunScope) -> AsyncGenerator[RunEvent | Checkpoint, None]:
        """The memory model reads the user's input and changes their memories."""
        state, spec = scope.state, scope.spec
        if not state.memory_started:
            state.memory_started = True
            yield scope.checkpoint()
            yield scope.event(MemoryUpdateStarted)
        if state.user_id is None or self.store is None:
            state.memory_updated = True
            yield scope.checkpoint()
            yield scope.event(MemoryUpdateCompleted, reason=NO_USER)
            return
        if state.memory_changes is None:
            try:
                state.memory_changes = await self._decide(scope)
            except (ModelProviderError, RunFailure) as exc:
                error = work_failed(state, "memory update", exc)
                state.memory_updated = True
                yield scope.checkpoint()
                yield scope.event(MemoryUpdateCompleted, error=error)
                return
        update = await self.store.apply(state.user_id, spec.id, state.memory_changes)
        state.memory_updated = True
        yield scope.checkpoint()
        yield scope.event(
            MemoryUpdateCompleted,
            memories=update.memories,
            deleted_memory_ids=update.deleted_memory_ids,
        )

    async def _decide(self, scope: RunScope) -> list[MemoryChange]:
        """What the memory model makes of the user's input; raises ModelProviderError."""
        state, spec = scope.state, scope.spec
        assert self.store is not None and state.user_id is not None
        try:
            provider, name, settings = auxiliary_model(spec.memory.model, spec, state)
            client = self.client(provider)
        except (KeyError, ValueError):
            raise RunFailure("user_error", "no model provider for the memory model") from None
        memories = await self.store.list_memories(state.user_id)
        request = manager_request(name, settings, memories, input_text(state))
        answer = await ask(state, client, request, f"{provider}:{name}")
        return changes_of(answer.calls, f"{state.run_id}:memory")


def _agentic_tools(store: MemoryStore) -> dict[str, AnyTool]:
    """add_memory, update_memory and delete_memory as tools the agent calls: each
    call is one change, its new memory's id derived from the call."""

    async def change(name: str, arguments: dict[str, Any], ctx: RunContext) -> str:
        assert ctx.user_id is not None
        raw = orjson.dumps({k: v for k, v in arguments.items() if v is not None}).decode()
        changes = changes_of([(name, raw)], ctx.idempotency_key)
        if not changes:
            return "Nothing changed: the arguments do not describe a change."
        update = await store.apply(ctx.user_id, ctx.agent_id, changes)
        if update.memories:
            memory = update.memories[0]
            return f"Memory {memory.memory_id} saved: {memory.memory}"
        if update.deleted_memory_ids:
            return f"Memory {update.deleted_memory_ids[0]} deleted."
        return f"No memory {changes[0].memory_id} of this user."

    async def add_memory(memory: str, ctx: RunContext, topics: list[str] | None = None) -> str:
        return await change("add_memory", {"memory": memory, "topics": topics}, ctx)

    async def update_memory(
        memory_id: str, memory: str, ctx: RunContext, topics: list[str] | None = None
    ) -> str:
        arguments = {"memory_id": memory_id, "memory": memory, "topics": topics}
        return await change("update_memory", arguments, ctx)

    async def delete_memory(memory_id: str, ctx: RunContext) -> str:
        return await change("delete_memory", {"memory_id": memory_id}, ctx)

    functions: dict[str, Callable[..., Any]] = {
        "add_memory": add_memory,
        "update_memory": update_memory,
        "delete_memory": delete_memory,
    }
    return {
        definition.name: Tool(
            functions[definition.name], name=definition.name, description=definition.description
        )
        for definition in MEMORY_TOOLS
    }
