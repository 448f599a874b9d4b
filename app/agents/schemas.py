"""Request and response bodies of the agent definitions API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from app.engine.spec import (
    AGENT_ID_PATTERN,
    MAX_INT32,
    AgentFields,
    AgentSpec,
    Guardrail,
    HistoryConfig,
    HookName,
    JsonObject,
    MemoryConfig,
    ModelRef,
    SessionSummaryConfig,
    ToolEntry,
)


class AgentCreate(AgentFields):
    """A new agent. Without `id`, one is generated."""

    id: Annotated[str, Field(pattern=AGENT_ID_PATTERN)] | None = None


class AgentUpdate(BaseModel):
    """A partial change: the fields present replace the stored ones."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    description: str | None = None
    instructions: str | list[str] | None = None
    model: str | ModelRef | None = None
    model_settings: JsonObject | None = None
    tools: list[ToolEntry] | None = None
    handoffs: list[Annotated[str, Field(pattern=AGENT_ID_PATTERN)]] | None = None
    handoff_description: str | None = None
    output_schema: JsonObject | None = None
    input_schema: JsonObject | None = None
    max_turns: StrictInt | None = Field(default=None, ge=1, le=MAX_INT32)
    history: HistoryConfig | None = None
    add_session_state_to_context: StrictBool | None = None
    input_guardrails: list[Guardrail] | None = None
    output_guardrails: list[Guardrail] | None = None
    pre_hooks: list[HookName] | None = None
    post_hooks: list[HookName] | None = None
    memory: MemoryConfig | None = None
    session_summary: SessionSummaryConfig | None = None
    parser_model: str | ModelRef | None = None
    parser_model_prompt: str | None = None
    output_model: str | ModelRef | None = None
    output_model_prompt: str | None = None
    metadata: JsonObject | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (null is a value for the nullable schemas)."""
        return self.model_dump(mode="json", exclude_unset=True)


class AgentRead(AgentSpec):
    created_at: datetime
    updated_at: datetime


class AgentVersionRead(AgentSpec):
    """One saved version of a definition, as it was when saved."""

    created_at: datetime
