"""Request and response bodies of the runs API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from app.engine.output import RunOutput, RunStatus
from app.engine.spec import MAX_INT32, ClientTool, Guardrail, JsonObject, ModelRef
from app.tracing import valid_trace_id

SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"

MultitaskStrategy = Literal["reject", "enqueue", "interrupt"]


class InputMessage(BaseModel):
    """One message of a list input."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[JsonObject] | None = None


class ImageInput(BaseModel):
    """An image by URL, or inline as base64 with its MIME type."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    content: str | None = None
    mime_type: str | None = None
    detail: Literal["auto", "low", "high"] | None = None


class MediaInput(BaseModel):
    """Audio, a video or a file by URL, or inline as base64 with its MIME type."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    content: str | None = None
    mime_type: str | None = None
    filename: str | None = Field(default=None, max_length=255)


class RunConfig(BaseModel):
    """Per-run overrides and tracing options (as the OpenAI Agents SDK's RunConfig)."""

    model_config = ConfigDict(extra="forbid")

    model: str | ModelRef | None = None
    model_settings: JsonObject | None = None
    max_turns: StrictInt | None = Field(default=None, ge=1, le=MAX_INT32)
    tracing_disabled: StrictBool = Field(default=False, description="Export nothing for this run.")
    trace_include_sensitive_data: StrictBool = Field(
        default=True,
        description=(
            "Record message contents, tool arguments and results in the run's spans"
            " (never when the server's TRACE_INCLUDE_SENSITIVE_DATA is false)."
        ),
    )
    workflow_name: str | None = Field(
        default=None,
        max_length=200,
        description="The name of the run's root span (default `Agent workflow`).",
    )
    trace_id: str | None = Field(
        default=None,
        description=(
            "The OpenTelemetry trace id of the run: 32 hex digits, or `trace_` + 32 hex digits"
            " (as the OpenAI Agents SDK writes it). Without it, a W3C `traceparent` header"
            " continues the caller's trace; otherwise the run starts a trace. A run keeps"
            " its trace when continued or resumed."
        ),
        examples=["trace_4bf92f3577b34da6a3ce929d0e0e4736"],
    )
    group_id: str | None = Field(
        default=None, max_length=200, description="Becomes the attribute `agentd.group_id`."
    )
    trace_metadata: JsonObject | None = Field(
        default=None, description="Each key becomes the attribute `agentd.trace_metadata.<key>`."
    )

    input_guardrails: list[Guardrail] = Field(
        default_factory=list,
        description="Checked after the agent's own input guardrails (of every agent of the run).",
    )
    output_guardrails: list[Guardrail] = Field(
        default_factory=list,
        description="Checked after the agent's own output guardrails (of every agent of the run).",
    )
    handoff_input_filter: Literal["none", "remove_tools", "last_user_message"] = Field(
        default="none",
        description="What the next agent sees at a handoff: the whole history (`none`), "
        "the history without tool calls and results, the handoff's own included "
        "(`remove_tools`, the OpenAI Agents SDK's remove_all_tools), or only the last "
        "user message.",
    )

    @field_validator("trace_id")
    @classmethod
    def _trace_id(cls, value: str | None) -> str | None:
        if value is not None and not valid_trace_id(value):
            raise ValueError(
                "must be 32 hex digits, or `trace_` followed by 32 hex digits, not all zero"
            )
        return value


class StreamOptions(BaseModel):
    """How the answer is delivered; shared by creating and continuing a run."""

    model_config = ConfigDict(extra="forbid")

    stream: StrictBool = Field(
        default=False,
        description=(
            "Answer with text/event-stream. With neither `stream` nor `background` the call"
            " waits for the end, and the model is asked for whole answers (not streamed): the"
            " run's events then carry each answer in one `RunContent`."
        ),
    )
    stream_events: StrictBool = Field(
        default=False,
        description="With `stream`: every event; false sends content and end events only.",
    )
    background: StrictBool = Field(
        default=False, description="Answer 202 at once; follow with GET /v1/runs/{id}/events."
    )
    on_disconnect: Literal["continue", "cancel"] = Field(
        default="continue",
        description="What happens to the run when a streaming client goes away.",
    )

    @property
    def watched(self) -> bool:
        """A client follows the events as they happen: the model streams for it."""
        return self.stream or self.background


class RunCreate(StreamOptions):
    input: str | list[InputMessage] | JsonObject = Field(
        description="A string, a list of messages {role, content}, or an object "
        "(validated against the agent's input schema)."
    )
    run_id: Annotated[str, Field(pattern=RUN_ID_PATTERN)] | None = Field(
        default=None,
        description=(
            "The client's id for the run. Sending the same create again answers that run"
            " (its stream from the start) and starts nothing; another body with the same id"
            " is 409 `run_exists`. A cancel for an id that does not exist yet is kept for ten"
            " minutes: a run created with it then ends cancelled at once."
        ),
    )
    session_id: Annotated[str, Field(pattern=SESSION_ID_PATTERN)] | None = None
    user_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    output_schema: JsonObject | None = None
    images: list[ImageInput] = Field(default_factory=list)
    audio: list[MediaInput] = Field(
        default_factory=list,
        description="Audio inputs (OpenAI: inline wav or mp3; Anthropic: none). A model that "
        "cannot take an item is 422 `unsupported_media` and no run is created.",
    )
    video: list[MediaInput] = Field(
        default_factory=list, description="Video inputs (only the `test` models take them)."
    )
    files: list[MediaInput] = Field(
        default_factory=list,
        description="Files (OpenAI: inline PDFs; Anthropic: PDFs and text files as documents).",
    )
    session_state: JsonObject | None = Field(
        default=None, description="Merged into the session's state before the run."
    )
    multitask_strategy: MultitaskStrategy = Field(
        default="reject",
        description=(
            "When the session has a queued or running run: `reject` answers 409"
            " `session_busy`, `enqueue` queues this run after it, `interrupt` cancels it"
            " and then starts this one. A paused run does not hold its session (a person"
            " may take hours to answer): other runs may start, and its continue answers"
            " 409 `session_busy` while one of them is active."
        ),
    )
    run_config: RunConfig = Field(default_factory=RunConfig)
    metadata: JsonObject = Field(default_factory=dict)


class RunExtras(BaseModel):
    """What a protocol adapter adds to a run beyond the native request body."""

    model_config = ConfigDict(extra="forbid")

    run_id: Annotated[str, Field(pattern=RUN_ID_PATTERN)] | None = Field(
        default=None, description="The client's id for the run (409 `run_exists` if taken)."
    )
    instructions: str | None = Field(
        default=None, description="Added to the system message after the agent's instructions."
    )
    client_tools: list[ClientTool] = Field(
        default_factory=list, description="Tools the client executes, for this run only."
    )
    session_history: StrictBool = Field(
        default=True,
        description="False: the input carries the whole conversation; the session's stored "
        "history is not added again.",
    )
    traceparent: str | None = Field(
        default=None,
        description="The caller's W3C trace context (its `traceparent` header): the run's trace"
        " continues it unless `run_config.trace_id` names one; a malformed value is ignored.",
    )


class ToolDecision(BaseModel):
    """The client's answer to one pending tool call of a paused run."""

    model_config = ConfigDict(extra="forbid")

    tool_call_id: str = Field(min_length=1)
    confirmed: StrictBool | None = None
    note: str | None = None
    result: Any = None
    user_input: JsonObject | None = None


class RunContinue(StreamOptions):
    tools: list[ToolDecision] = Field(default_factory=list)


class RunAccepted(BaseModel):
    """The answer to a background run or a cancel: where the run stands."""

    run_id: str
    status: RunStatus
    session_id: str | None = None


class RunRead(RunOutput):
    """A run as stored: the RunOutput, and how far its events go."""

    last_seq: int = 0
    cancel_requested: bool = False
