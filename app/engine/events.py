"""Typed run events: the SSE contract (API.md, "Events").

Every event has `event` (its name, the discriminator), `run_id`,
`session_id`, `agent_id` and `created_at`; the run service adds `seq` when it
stores the event. Names follow Agno's run events, plus `AgentHandoff`,
`GuardrailTripped` and `CustomEvent`.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from app.engine.memory import Memory
from app.engine.output import Requirement, RunError, RunOutput, ToolExecution
from app.engine.summary import SessionSummary

_last_stamp: tuple[int, str] = (-1, "")
_last_second: tuple[int, str] = (-1, "")


def utcnow_iso() -> str:
    """Now as an RFC 3339 UTC string with millisecond precision (formatted once per
    millisecond, the date and time once per second: a burst of events shares them)."""
    global _last_stamp, _last_second
    ms = time.time_ns() // 1_000_000
    if ms != _last_stamp[0]:
        seconds, millis = divmod(ms, 1000)
        if seconds != _last_second[0]:
            _last_second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
        _last_stamp = (ms, f"{_last_second[1]}.{millis:03d}Z")
    return _last_stamp[1]


class BaseEvent(BaseModel):
    event: str
    seq: int | None = None
    run_id: str
    session_id: str
    agent_id: str
    created_at: str = Field(default_factory=utcnow_iso)


class RunStarted(BaseEvent):
    event: Literal["RunStarted"] = "RunStarted"
    agent_name: str = ""
    agent_version: int = 1
    model: str = ""


class RunContent(BaseEvent):
    """A piece of the answer as the model streams it."""

    event: Literal["RunContent"] = "RunContent"
    content: Any = None
    content_type: str = "str"


class RunIntermediateContent(BaseEvent):
    """Text a model produced in a turn that also called tools."""

    event: Literal["RunIntermediateContent"] = "RunIntermediateContent"
    content: Any = None
    content_type: str = "str"


class RunContentCompleted(BaseEvent):
    """The final answer is complete; `content` is all of it."""

    event: Literal["RunContentCompleted"] = "RunContentCompleted"
    content: Any = None
    content_type: str = "str"


class RunCompleted(RunOutput):
    """Carries the whole RunOutput."""

    event: Literal["RunCompleted"] = "RunCompleted"
    seq: int | None = None


class RunErrorEvent(BaseEvent):
    event: Literal["RunError"] = "RunError"
    error: RunError
    content: str | None = None  # the error message, as Agno sends it


class RunCancelled(BaseEvent):
    event: Literal["RunCancelled"] = "RunCancelled"
    reason: str | None = None


class RunPaused(BaseEvent):
    event: Literal["RunPaused"] = "RunPaused"
    requirements: list[Requirement]
    tools: list[ToolExecution] = Field(default_factory=list)


class RunContinued(BaseEvent):
    """The run goes on: after the client's decisions, or on another worker after
    its first one was lost (`reason: "resumed"`; content streamed since the last
    completed step is produced again)."""

    event: Literal["RunContinued"] = "RunContinued"
    reason: str | None = None


class ToolCallStarted(BaseEvent):
    event: Literal["ToolCallStarted"] = "ToolCallStarted"
    tool: ToolExecution


class ToolCallCompleted(BaseEvent):
    event: Literal["ToolCallCompleted"] = "ToolCallCompleted"
    tool: ToolExecution
    content: Any = None


class ReasoningStarted(BaseEvent):
    event: Literal["ReasoningStarted"] = "ReasoningStarted"


class ReasoningStep(BaseEvent):
    """A piece of the model's reasoning as it streams."""

    event: Literal["ReasoningStep"] = "ReasoningStep"
    reasoning_content: str


class ReasoningCompleted(BaseEvent):
    event: Literal["ReasoningCompleted"] = "ReasoningCompleted"
    reasoning_content: str = ""


class AgentHandoff(BaseEvent):
    event: Literal["AgentHandoff"] = "AgentHandoff"
    from_agent_id: str
    to_agent_id: str
    tool_call_id: str | None = None


class GuardrailTripped(BaseEvent):
    event: Literal["GuardrailTripped"] = "GuardrailTripped"
    guardrail: str
    guardrail_type: str
    stage: Literal["input", "output"]
    message: str = ""
    output_info: Any = None


class CustomEvent(BaseEvent):
    """Emitted by tools through their run context."""

    event: Literal["CustomEvent"] = "CustomEvent"
    name: str
    data: Any = None
    tool_call_id: str | None = None


class _Marker(BaseEvent):
    """Agno's lifecycle markers that carry no extra fields."""


class MemoryUpdateStarted(_Marker):
    event: Literal["MemoryUpdateStarted"] = "MemoryUpdateStarted"


class MemoryUpdateCompleted(BaseEvent):
    """`memories`: the memories added or updated; `deleted_memory_ids`: those deleted.
    `reason` says why nothing was done (`no_user_id`: the run has no user); `error`
    why the update failed (the memory model's call: the run completes all the same)."""

    event: Literal["MemoryUpdateCompleted"] = "MemoryUpdateCompleted"
    memories: list[Memory] = Field(default_factory=list)
    deleted_memory_ids: list[str] = Field(default_factory=list)
    reason: str | None = None
    error: RunError | None = None


class SessionSummaryStarted(_Marker):
    event: Literal["SessionSummaryStarted"] = "SessionSummaryStarted"


class SessionSummaryCompleted(BaseEvent):
    """`session_summary`: the session's new summary; with `error` (the summary model's
    call failed, the run completes all the same) the summary as it was, or null."""

    event: Literal["SessionSummaryCompleted"] = "SessionSummaryCompleted"
    session_summary: SessionSummary | None
    error: RunError | None = None


class _HookEvent(BaseEvent):
    """A hook's start or end; `hook_name` is the name it is registered under."""

    hook_name: str


class PreHookStarted(_HookEvent):
    event: Literal["PreHookStarted"] = "PreHookStarted"


class PreHookCompleted(_HookEvent):
    event: Literal["PreHookCompleted"] = "PreHookCompleted"


class PostHookStarted(_HookEvent):
    event: Literal["PostHookStarted"] = "PostHookStarted"


class PostHookCompleted(_HookEvent):
    event: Literal["PostHookCompleted"] = "PostHookCompleted"


class ParserModelResponseStarted(_Marker):
    event: Literal["ParserModelResponseStarted"] = "ParserModelResponseStarted"


class ParserModelResponseCompleted(BaseEvent):
    """`content`: the object the parser model made of the answer."""

    event: Literal["ParserModelResponseCompleted"] = "ParserModelResponseCompleted"
    content: Any = None
    content_type: str = "str"


class OutputModelResponseStarted(_Marker):
    event: Literal["OutputModelResponseStarted"] = "OutputModelResponseStarted"


class OutputModelResponseCompleted(BaseEvent):
    """`content`: the answer the output model wrote."""

    event: Literal["OutputModelResponseCompleted"] = "OutputModelResponseCompleted"
    content: Any = None


RunEvent = Annotated[
    RunStarted
    | RunContent
    | RunIntermediateContent
    | RunContentCompleted
    | RunCompleted
    | RunErrorEvent
    | RunCancelled
    | RunPaused
    | RunContinued
    | ToolCallStarted
    | ToolCallCompleted
    | ReasoningStarted
    | ReasoningStep
    | ReasoningCompleted
    | AgentHandoff
    | GuardrailTripped
    | CustomEvent
    | MemoryUpdateStarted
    | MemoryUpdateCompleted
    | SessionSummaryStarted
    | SessionSummaryCompleted
    | PreHookStarted
    | PreHookCompleted
    | PostHookStarted
    | PostHookCompleted
    | ParserModelResponseStarted
    | ParserModelResponseCompleted
    | OutputModelResponseStarted
    | OutputModelResponseCompleted,
    Field(discriminator="event"),
]

RUN_EVENT_ADAPTER: TypeAdapter[RunEvent] = TypeAdapter(RunEvent)

# A stream ends after exactly one of these.
TERMINAL_EVENTS: frozenset[str] = frozenset({"RunCompleted", "RunError", "RunCancelled"})
STREAM_END_EVENTS: frozenset[str] = TERMINAL_EVENTS | {"RunPaused"}
# With stream_events false a stream carries only these.
CONTENT_EVENTS: frozenset[str] = frozenset({"RunContent"}) | STREAM_END_EVENTS
