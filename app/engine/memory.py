"""User memories (Agno's `enable_user_memories` / `enable_agentic_memory`).

The memory manager makes one model call: it reads the user's input and the
user's memories, and answers with calls of three tools (`add_memory`,
`update_memory`, `delete_memory`), which become `MemoryChange`s applied through
a `MemoryStore` (the service's database). A change's new memory gets an id
derived from the run (and the tool call, in agentic mode): a run resumed after a
crash applies its changes again without duplicating a memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import orjson
from pydantic import BaseModel, Field

from app.engine.models.base import Message, ModelRequest, ToolDefinition

MEMORY_NAMESPACE = uuid.UUID("0b5c4a52-6f1e-4d8e-9a57-3c1f0e6a2d41")
AGENTIC_MEMORY_TOOL = "update_user_memory"


class Memory(BaseModel):
    """One memory of a user, as stored and as the API shows it."""

    memory_id: str
    user_id: str
    agent_id: str | None = None
    memory: str
    topics: list[str] = Field(default_factory=list)
    created_at: str | None = None
    updated_at: str | None = None


class MemoryChange(BaseModel):
    """What the memory model decided for one memory."""

    action: Literal["add", "update", "delete"]
    memory_id: str
    memory: str | None = None
    topics: list[str] | None = None


class MemoryUpdate(BaseModel):
    """The memories a store changed: added or updated, and the ids it deleted."""

    memories: list[Memory] = Field(default_factory=list)
    deleted_memory_ids: list[str] = Field(default_factory=list)


class MemoryStore(Protocol):
    async def list_memories(self, user_id: str) -> list[Memory]:
        """The user's memories, oldest first."""
        ...

    async def apply(
        self, user_id: str, agent_id: str, changes: Sequence[MemoryChange]
    ) -> MemoryUpdate:
        """Apply `changes` to the user's memories in one transaction. An `add` whose
        id exists updates it; an update or delete of another user's or a missing
        memory changes nothing."""
        ...


MEMORY_TOOLS = [
    ToolDefinition(
        "add_memory",
        "Add a new memory about the user.",
        {
            "type": "object",
            "properties": {
                "memory": {"type": "string", "description": "The memory, one short sentence."},
                "topics": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["memory"],
        },
    ),
    ToolDefinition(
        "update_memory",
        "Replace an existing memory (by its id) with a new text.",
        {
            "type": "object",
            "properties": {
                "memory_id": {"type": "string"},
                "memory": {"type": "string"},
                "topics": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["memory_id", "memory"],
        },
    ),
    ToolDefinition(
        "delete_memory",
        "Delete an existing memory (by its id) that is wrong or no longer true.",
        {
            "type": "object",
            "properties": {"memory_id": {"type": "string"}},
            "required": ["memory_id"],
        },
    ),
]

MANAGER_PROMPT = """\
You are a memory manager. Decide what to remember about the user from their \
message: personal facts, preferences, plans, and anything they ask you to \
remember. Add a memory for what is new, update a memory that the message \
corrects or extends, delete a memory the message shows is no longer true. \
Do not store what is already remembered. If nothing is worth remembering, call \
no tool.
Memories already stored, one per line as `- [memory_id] memory`:
<existing_memories>
{memories}
</existing_memories>"""


def memory_line(memory: Memory) -> str:
    return f"- [{memory.memory_id}] {memory.memory}"


def manager_request(
    model: str, settings: dict[str, Any], memories: list[Memory], text: str
) -> ModelRequest:
    """The memory model's request: the manager's prompt with the user's memories,
    and the user's input."""
    system = MANAGER_PROMPT.format(memories="\n".join(memory_line(m) for m in memories))
    messages: list[Message] = [
        {"role": "system", "content": system},
        {"role": "user", "content": text},
    ]
    return ModelRequest(
        model=model,
        messages=messages,
        tools=list(MEMORY_TOOLS),
        settings=settings,
        stream=False,
        purpose="memory",
    )


def changes_of(calls: list[tuple[str, str]], key: str) -> list[MemoryChange]:
    """The memory model's tool calls as changes; calls that make no sense are left
    out. A new memory's id is derived from `key` and the call's position."""
    changes: list[MemoryChange] = []
    for index, (name, raw) in enumerate(calls):
        try:
            arguments = orjson.loads(raw or "{}")
        except orjson.JSONDecodeError:
            continue
        if not isinstance(arguments, dict):
            continue
        memory, memory_id = arguments.get("memory"), arguments.get("memory_id")
        topics = arguments.get("topics")
        topics = [str(t) for t in topics] if isinstance(topics, list) else None
        if name == "add_memory" and isinstance(memory, str) and memory.strip():
            new_id = str(uuid.uuid5(MEMORY_NAMESPACE, f"{key}:{index}"))
            changes.append(
                MemoryChange(action="add", memory_id=new_id, memory=memory, topics=topics)
            )
        elif name == "update_memory" and isinstance(memory_id, str) and isinstance(memory, str):
            changes.append(
                MemoryChange(action="update", memory_id=memory_id, memory=memory, topics=topics)
            )
        elif name == "delete_memory" and isinstance(memory_id, str):
            changes.append(MemoryChange(action="delete", memory_id=memory_id))
    return changes


def memories_context(memories: list[Memory], *, with_ids: bool = False) -> str:
    """The user's memories as the system message carries them (with their ids when
    the agent manages them itself)."""
    lines = "\n".join(
        memory_line(memory) if with_ids else f"- {memory.memory}" for memory in memories
    )
    return (
        "You have access to memories from previous interactions with the user:\n"
        f"<memories_from_previous_interactions>\n{lines}\n</memories_from_previous_interactions>\n"
        "Note: this information is from previous interactions and may be updated in this "
        "conversation. Prefer information from this conversation over these memories."
    )
