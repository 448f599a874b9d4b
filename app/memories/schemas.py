"""Bodies of the memories API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.engine.spec import AGENT_ID_PATTERN

Topic = Annotated[str, Field(min_length=1, max_length=100)]
MemoryText = Annotated[str, Field(min_length=1, max_length=10_000)]
AgentId = Annotated[str, Field(pattern=AGENT_ID_PATTERN)]


class MemoryCreate(BaseModel):
    """A memory of a user, optionally tagged with an agent."""

    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(min_length=1, max_length=128)
    memory: MemoryText
    topics: list[Topic] = Field(default_factory=list, max_length=50)
    agent_id: AgentId | None = None


class MemoryUpdate(BaseModel):
    """A partial change: the fields present replace the stored ones (`agent_id`
    null removes the tag)."""

    model_config = ConfigDict(extra="forbid")

    memory: MemoryText | None = None
    topics: list[Topic] | None = Field(default=None, max_length=50)
    agent_id: AgentId | None = None

    @model_validator(mode="after")
    def _not_null(self) -> MemoryUpdate:
        for name in ("memory", "topics"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class MemoryRead(BaseModel):
    memory_id: str
    user_id: str
    agent_id: str | None = None
    memory: str
    topics: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
