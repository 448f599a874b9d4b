"""What a run produces: tool executions, requirements, metrics, the RunOutput."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["queued", "running", "paused", "completed", "error", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "error", "cancelled"})

# Stable error codes (API.md). Keep them; add beside them.
ErrorCode = Literal[
    "max_turns_exceeded",
    "input_guardrail_tripwire_triggered",
    "output_guardrail_tripwire_triggered",
    "model_behavior_error",
    "model_provider_error",
    "tool_error",
    "internal_error",
    "worker_lost",
    "user_error",
]


class RunError(BaseModel):
    code: str
    message: str


class ToolExecution(BaseModel):
    """One tool call of a run and what became of it."""

    model_config = ConfigDict(extra="allow")

    tool_call_id: str
    tool_name: str
    tool_args: dict[str, Any] = Field(default_factory=dict)
    result: Any = None
    # pending: waiting for a human; running; completed; error (the tool raised or
    # the call was invalid); rejected (a human refused it)
    status: Literal["pending", "running", "completed", "error", "rejected"] = "running"
    error: str | None = None
    kind: Literal["server", "client", "handoff"] = "server"
    agent_id: str | None = None
    started_at: str | None = None
    completed_at: str | None = None


class Requirement(BaseModel):
    """What a paused run needs from the client for one pending tool call."""

    tool_call_id: str
    tool_name: str
    tool_args: dict[str, Any] = Field(default_factory=dict)
    kind: Literal["confirmation", "user_input", "external_execution"]
    user_input_schema: dict[str, Any] | None = None


class ModelCallMetrics(BaseModel):
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    time_to_first_token: float | None = None
    duration: float = 0.0


class RunMetrics(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    time_to_first_token: float | None = None
    duration: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0
    calls: list[ModelCallMetrics] = Field(default_factory=list)


class RunOutput(BaseModel):
    """A run as clients see it (API.md `RunOutput`)."""

    run_id: str
    agent_id: str
    agent_name: str = ""
    agent_version: int = 1
    last_agent_id: str | None = None
    session_id: str
    user_id: str | None = None
    status: RunStatus
    content: Any = None
    content_type: str = "str"
    reasoning_content: str | None = None
    messages: list[dict[str, Any]] = Field(default_factory=list)
    tools: list[ToolExecution] = Field(default_factory=list)
    requirements: list[Requirement] = Field(default_factory=list)
    metrics: RunMetrics = Field(default_factory=RunMetrics)
    model: str = ""
    error: RunError | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    updated_at: str
