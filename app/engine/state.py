"""`RunState`: everything needed to continue a run, as plain JSON.

The loop reads its next step from the state alone, so a state dumped with
`model_dump(mode="json")` and loaded with `model_validate` continues a fresh,
a paused or a crashed run the same way. `messages` holds the session history
first (`history_length` of them), then this run's input and turns, in the
canonical Chat Completions shape; the system message is not stored (it is
built from the active agent for every model call).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, overload

from pydantic import BaseModel, Field

from app.engine.events import utcnow_iso
from app.engine.memory import Memory, MemoryChange
from app.engine.models.base import Message
from app.engine.output import (
    Requirement,
    RunError,
    RunMetrics,
    RunOutput,
    RunStatus,
    ToolExecution,
)
from app.engine.spec import ClientTool, Guardrail
from app.engine.summary import SessionSummary

OutputT = TypeVar("OutputT", bound=RunOutput)


class RunOverrides(BaseModel):
    """Per-run settings that win over the agent definition (for every agent of the run)."""

    model: str | None = None
    model_settings: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    # Added by the caller for this run: instructions after the agent's own, and
    # tools the client executes (their calls pause the run, as client tools do).
    instructions: str | None = None
    client_tools: list[ClientTool] = Field(default_factory=list)
    # RunConfig's: guardrails added to every agent's, and what a handoff passes on.
    input_guardrails: list[Guardrail] = Field(default_factory=list)
    output_guardrails: list[Guardrail] = Field(default_factory=list)
    handoff_input_filter: Literal["none", "remove_tools", "last_user_message"] = "none"


class TraceContext(BaseModel):
    """The trace a run belongs to for its whole life, and how it is traced (run_config).

    Kept with the state, so a run continued after a pause, or resumed by another
    worker after a crash, goes on in the same trace."""

    trace_id: str | None = None  # 32 lowercase hex digits; None: chosen when first traced
    parent_span_id: str | None = None  # the caller's span (W3C traceparent), 16 hex digits
    sampled: bool = True  # the caller's sampled flag
    last_span_id: str | None = None  # the root span of the run's latest execution
    disabled: bool = False
    include_sensitive_data: bool = True
    workflow_name: str | None = None
    group_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class RunState(BaseModel):
    format_version: int = 1

    run_id: str
    session_id: str
    user_id: str | None = None
    created_at: str

    # The agent the run was started on, and the one currently answering.
    agent_id: str
    agent_name: str = ""
    agent_version: int = 1
    active_agent_id: str
    active_agent_version: int = 1

    messages: list[Message] = Field(default_factory=list)
    history_length: int = 0
    turns: int = 0  # model calls made by this run
    max_turns: int
    overrides: RunOverrides = Field(default_factory=RunOverrides)

    tools: list[ToolExecution] = Field(default_factory=list)
    pending: list[Requirement] = Field(default_factory=list)
    # The client's answers to `pending`, by tool_call_id (set by Runner.apply_decisions).
    decisions: dict[str, dict[str, Any]] = Field(default_factory=dict)
    session_state: dict[str, Any] = Field(default_factory=dict)

    metrics: RunMetrics = Field(default_factory=RunMetrics)
    model: str = ""  # "provider:name" of the latest model call
    content: Any = None
    content_type: str = "str"
    reasoning_content: str | None = None
    status: RunStatus = "queued"
    error: RunError | None = None
    output_retries: int = 0
    # A handoff switched the active agent, which has not answered yet: the next step is
    # its model call (read from the messages alone, a handing-off turn's text that a
    # `remove_tools` filter left without its tool calls would pass for the answer).
    handed_off: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)
    # The user's memories for the system message (None: not read yet).
    user_memories: list[Memory] | None = None
    # The answer is settled (content set, RunContentCompleted announced): what
    # remains is the work after the run (memories, session summary).
    answered: bool = False
    # The memory update announced (MemoryUpdateStarted stored: a resumed run does not
    # say it again), what the memory model decided (None: not asked yet), and whether
    # it is applied.
    memory_started: bool = False
    memory_changes: list[MemoryChange] | None = None
    memory_updated: bool = False
    # The session's summary when the run started (rewritten after it), whether its
    # rewrite is announced, and whether it is done.
    session_summary: SessionSummary | None = None
    summary_started: bool = False
    summary_updated: bool = False
    # A client follows the events as they happen (a stream or a background run): the
    # model streams. A blocking run's client waits for the end: whole answers suffice.
    streaming: bool = True
    # None: the run was created without tracing; a tracing worker starts a trace for it.
    trace: TraceContext | None = None

    @property
    def last_agent_id(self) -> str:
        """The agent that answers (or answered) last: the root one unless a handoff happened."""
        return self.active_agent_id

    def new_messages(self) -> list[Message]:
        """This run's messages (input and turns), without the session history."""
        return self.messages[self.history_length :]

    def tool(self, tool_call_id: str) -> ToolExecution | None:
        return next((t for t in self.tools if t.tool_call_id == tool_call_id), None)

    def upsert_tool(self, execution: ToolExecution) -> None:
        for index, existing in enumerate(self.tools):
            if existing.tool_call_id == execution.tool_call_id:
                self.tools[index] = execution
                return
        self.tools.append(execution)

    @overload
    def to_output(self, updated_at: str | None = None) -> RunOutput: ...

    @overload
    def to_output(self, updated_at: str | None = None, *, cls: type[OutputT]) -> OutputT: ...

    def to_output(
        self, updated_at: str | None = None, *, cls: type[RunOutput] = RunOutput
    ) -> RunOutput:
        """The RunOutput clients see; `messages` are this run's own (see `new_messages`).

        `cls` may be a subclass (the `RunCompleted` event carries the whole output).
        """
        return cls(
            run_id=self.run_id,
            agent_id=self.agent_id,
            agent_name=self.agent_name,
            agent_version=self.agent_version,
            last_agent_id=self.last_agent_id,
            session_id=self.session_id,
            user_id=self.user_id,
            status=self.status,
            content=self.content,
            content_type=self.content_type,
            reasoning_content=self.reasoning_content,
            messages=self.new_messages(),
            tools=list(self.tools),
            requirements=list(self.pending),
            # a copy: the state's metrics go on changing (a dump and a validation,
            # both in pydantic's core, are cheaper than a deep copy)
            metrics=self.metrics.model_dump(),
            model=self.model,
            error=self.error,
            metadata=dict(self.metadata),
            created_at=self.created_at,
            updated_at=updated_at or utcnow_iso(),
        )
