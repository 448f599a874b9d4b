"""A run's spans, named and filled in after the OpenTelemetry GenAI semantic
conventions, started through the `Tracer` injected into the Runner.

The engine decides which spans a run has and what they carry; a `Tracer` only
starts them (the OpenTelemetry one is `app.tracing`). Each execution of a run
(its start, its continuation after a pause, its resumption after a crash) is
one root span named after `workflow_name`, in the one trace the run keeps for
its life (`RunState.trace`); a later execution links to the one before. Under
the root: `invoke_agent {agent}` per agent (a handoff ends it and starts the
next), and under that `chat {model}` per model call, `execute_tool {tool}` per
tool call, `apply_guardrail {guardrail}` per guardrail and `handoff {agent}`.
Every span carries `agentd.run_id` and `gen_ai.conversation.id` (the session).

A run that is not traced gets `NO_TRACE`, whose methods return at once: no
span and no attribute is built. Message contents, tool arguments and results,
and error descriptions (which may quote them) are recorded only when both the
server and the run allow sensitive data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from app.engine.errors import RunFailure
from app.engine.genai import dumps, input_messages, output_messages
from app.engine.models.base import Message, ModelProviderError, ModelRequest
from app.engine.output import ToolExecution
from app.engine.spec import AgentSpec, split_model
from app.engine.state import RunState, TraceContext

AttributeValue = str | bool | int | float | Sequence[str]
Attributes = dict[str, AttributeValue]

logger = logging.getLogger(__name__)

DEFAULT_WORKFLOW_NAME = "Agent workflow"

RUN_ID = "agentd.run_id"
CONVERSATION_ID = "gen_ai.conversation.id"
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
ERROR_TYPE = "error.type"
# The request settings recorded on a chat span, by the name the engine gives them.
REQUEST_SETTINGS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "max_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
}
# How an execution began, by the run's status when it was picked up.
EXECUTIONS = {"queued": "start", "paused": "continue", "running": "resume"}


class Span(Protocol):
    """What the engine does with a span (a subset of OpenTelemetry's `Span`)."""

    def is_recording(self) -> bool: ...

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None: ...

    def end(self, end_time: int | None = None) -> None: ...


class Tracer(Protocol):
    """Starts the spans the engine asks for."""

    @property
    def enabled(self) -> bool:
        """False: no run is traced (`NO_TRACE` for every run)."""
        ...

    @property
    def include_sensitive_data(self) -> bool:
        """The server's own rule; a run may narrow it, never widen it."""
        ...

    def start_root(self, name: str, trace: TraceContext, attributes: Attributes) -> Span:
        """The root span of one execution: in `trace.trace_id` (a new trace when
        None), under the caller's span when there is one, linked to the run's
        previous execution (`trace.last_span_id`)."""
        ...

    def start_span(
        self, name: str, parent: Span, attributes: Attributes, *, client: bool = False
    ) -> Span:
        """A span under `parent`; `client`: a call to another service (a model)."""
        ...

    def set_error(self, span: Span, error_type: str, description: str | None) -> None: ...

    def ids(self, span: Span) -> tuple[str, str]:
        """(trace id, span id) of `span`, as lowercase hex."""
        ...


class _NoTracer:
    enabled = False
    include_sensitive_data = False

    def start_root(self, name: str, trace: TraceContext, attributes: Attributes) -> Span:
        return NO_SPAN

    def start_span(
        self, name: str, parent: Span, attributes: Attributes, *, client: bool = False
    ) -> Span:
        return NO_SPAN

    def set_error(self, span: Span, error_type: str, description: str | None) -> None:
        return None

    def ids(self, span: Span) -> tuple[str, str]:
        return "", ""


class _NoSpan:
    def is_recording(self) -> bool:
        return False

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        return None

    def end(self, end_time: int | None = None) -> None:
        return None


NO_TRACER: Tracer = _NoTracer()
NO_SPAN: Span = _NoSpan()


class RunTrace:
    """The spans of one execution of a run (see the module's docstring)."""

    recording = True

    def __init__(self, tracer: Tracer, root: Span, base: Attributes, sensitive: bool) -> None:
        self.root = root
        self.sensitive = sensitive
        self.trace_id, self.span_id = tracer.ids(root)
        self._tracer = tracer
        self._base = base
        self._tools: dict[str, Span] = {}
        self._ended = False

    def _start(
        self, name: str, parent: Span | None, attributes: Attributes, *, client: bool = False
    ) -> Span:
        attributes.update(self._base)
        return self._tracer.start_span(name, parent or self.root, attributes, client=client)

    def _error(self, span: Span, error_type: str, description: str | None) -> None:
        self._tracer.set_error(span, error_type, description if self.sensitive else None)

    # Agents ------------------------------------------------------------------

    def agent(self, spec: AgentSpec, state: RunState, parent: Span | None = None) -> Span:
        """`invoke_agent {name}`: the agent answering from now on (`parent`: the root)."""
        provider, model = split_model(state.overrides.model or spec.model)
        name = spec.name or spec.id
        attributes: Attributes = {
            OPERATION: "invoke_agent",
            PROVIDER: provider,
            REQUEST_MODEL: model,
            "gen_ai.agent.name": name,
            "gen_ai.agent.id": spec.id,
            "gen_ai.agent.version": str(spec.version),
        }
        if spec.description:
            attributes["gen_ai.agent.description"] = spec.description
        return self._start(f"invoke_agent {name}", parent, attributes)

    def agent_done(self, span: Span, state: RunState) -> None:
        if state.status == "error" and state.error is not None:
            self._error(span, state.error.code, state.error.message)
        span.end()

    def handoff(self, parent: Span, source: AgentSpec, target: AgentSpec, call_id: str) -> None:
        """`handoff {target}`: the moment the conversation passes to another agent."""
        name = target.name or target.id
        attributes: Attributes = {
            OPERATION: "handoff",
            "agentd.handoff.from_agent_id": source.id,
            "agentd.handoff.to_agent_id": target.id,
            "gen_ai.tool.call.id": call_id,
        }
        self._start(f"handoff {name}", parent, attributes).end()

    # Model calls -------------------------------------------------------------

    def chat(self, parent: Span, provider: str, request: ModelRequest) -> Span:
        """`chat {model}`: one model call (the provider's model name)."""
        attributes: Attributes = {
            OPERATION: "chat",
            PROVIDER: provider,
            REQUEST_MODEL: request.model,
        }
        for setting, key in REQUEST_SETTINGS.items():
            value = request.settings.get(setting)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[key] = value
        if request.output_schema is not None:
            attributes["gen_ai.output.type"] = "json"
        if self.sensitive:
            attributes["gen_ai.input.messages"] = input_messages(request.messages)
        return self._start(f"chat {request.model}", parent, attributes, client=True)

    def chat_done(
        self,
        span: Span,
        message: Message,
        input_tokens: int,
        output_tokens: int,
        finish_reason: str | None,
    ) -> None:
        attributes: Attributes = {
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.response.finish_reasons": [finish_reason] if finish_reason else [],
        }
        if self.sensitive:
            attributes["gen_ai.output.messages"] = output_messages(message, finish_reason)
        span.set_attributes(attributes)
        span.end()

    def failed(self, span: Span, error: BaseException) -> None:
        """End a span whose operation raised or was cut short (a cancel, a consumer
        that stopped: not errors)."""
        if isinstance(error, asyncio.CancelledError | GeneratorExit):
            span.set_attributes({"agentd.cancelled": True})
        elif isinstance(error, ModelProviderError):
            self._error(span, "model_provider_error", str(error))
        elif isinstance(error, RunFailure):
            self._error(span, error.code, error.message)
        else:
            self._error(span, type(error).__qualname__, str(error))
        span.end()

    # Tools -------------------------------------------------------------------

    def tool_started(self, parent: Span, execution: ToolExecution) -> None:
        """`execute_tool {name}`, ended by `tool_finished` (a handoff has its own span)."""
        if execution.kind == "handoff":
            return
        attributes: Attributes = {
            OPERATION: "execute_tool",
            "gen_ai.tool.name": execution.tool_name,
            "gen_ai.tool.call.id": execution.tool_call_id,
            "gen_ai.tool.type": "function",
        }
        if execution.kind == "client":  # executed by the client, not here
            attributes["agentd.tool.kind"] = "client"
        if self.sensitive:
            attributes["gen_ai.tool.call.arguments"] = dumps(execution.tool_args)
        name = f"execute_tool {execution.tool_name}"
        self._tools[execution.tool_call_id] = self._start(name, parent, attributes)

    def tool_finished(self, execution: ToolExecution) -> None:
        span = self._tools.pop(execution.tool_call_id, None)
        if span is None:
            return
        attributes: Attributes = {}
        if execution.status != "completed":  # error, or rejected by a person
            attributes["agentd.tool.status"] = execution.status
        if self.sensitive:
            value = execution.error if execution.error is not None else execution.result
            attributes["gen_ai.tool.call.result"] = (
                value if isinstance(value, str) else dumps(value)
            )
        if attributes:
            span.set_attributes(attributes)
        if execution.status == "error":
            self._error(span, "tool_error", execution.error)
        span.end()

    # Guardrails --------------------------------------------------------------

    def guardrail(self, parent: Span, name: str, kind: str, stage: str) -> Span:
        """`apply_guardrail {name}`: one guardrail checking the input or the output."""
        attributes: Attributes = {
            OPERATION: "apply_guardrail",
            PROVIDER: "agentd",
            "gen_ai.guardrail.component.name": name,
            "gen_ai.guardrail.source": stage,
            "agentd.guardrail.type": kind,
        }
        return self._start(f"apply_guardrail {name}", parent, attributes)

    def guardrail_done(self, span: Span, tripped: bool) -> None:
        span.set_attributes(
            {
                "gen_ai.guardrail.result.type": "tripwire_triggered",
                "gen_ai.guardrail.result.value": "true" if tripped else "false",
            }
        )
        span.end()

    # The execution -----------------------------------------------------------

    def end(self, state: RunState) -> None:
        """End the root span with how the execution left the run (once)."""
        if self._ended:
            return
        self._ended = True
        for span in self._tools.values():  # cut short: a cancel, a lost lease
            span.set_attributes({"agentd.cancelled": True})
            span.end()
        self._tools.clear()
        self.root.set_attributes({"agentd.run.status": state.status})
        if state.status == "error" and state.error is not None:
            self._error(self.root, state.error.code, state.error.message)
        self.root.end()


class _NoTrace(RunTrace):
    """A run that is not traced: every method returns at once."""

    recording = False

    def __init__(self) -> None:
        self.root = NO_SPAN
        self.sensitive = False
        self.trace_id = self.span_id = ""

    def agent(self, spec: AgentSpec, state: RunState, parent: Span | None = None) -> Span:
        return NO_SPAN

    def agent_done(self, span: Span, state: RunState) -> None:
        return None

    def handoff(self, parent: Span, source: AgentSpec, target: AgentSpec, call_id: str) -> None:
        return None

    def chat(self, parent: Span, provider: str, request: ModelRequest) -> Span:
        return NO_SPAN

    def chat_done(
        self,
        span: Span,
        message: Message,
        input_tokens: int,
        output_tokens: int,
        finish_reason: str | None,
    ) -> None:
        return None

    def failed(self, span: Span, error: BaseException) -> None:
        return None

    def tool_started(self, parent: Span, execution: ToolExecution) -> None:
        return None

    def tool_finished(self, execution: ToolExecution) -> None:
        return None

    def guardrail(self, parent: Span, name: str, kind: str, stage: str) -> Span:
        return NO_SPAN

    def guardrail_done(self, span: Span, tripped: bool) -> None:
        return None

    def end(self, state: RunState) -> None:
        return None


NO_TRACE: RunTrace = _NoTrace()


def start_trace(tracer: Tracer, state: RunState) -> RunTrace:
    """The trace of one execution of `state`, its root span started (call it before
    the execution changes the run's status); `NO_TRACE` when the run is not traced."""
    if not tracer.enabled:
        return NO_TRACE
    context = state.trace
    if context is None:  # created where tracing was off: traced from now on
        context = state.trace = TraceContext()
    if context.disabled:
        return NO_TRACE
    name = context.workflow_name or DEFAULT_WORKFLOW_NAME
    base: Attributes = {RUN_ID: state.run_id, CONVERSATION_ID: state.session_id}
    attributes: Attributes = {
        **base,
        OPERATION: "invoke_workflow",
        "gen_ai.workflow.name": name,
        "agentd.run.execution": EXECUTIONS.get(state.status, "resume"),
    }
    if context.group_id is not None:
        attributes["agentd.group_id"] = context.group_id
    for key, value in context.metadata.items():
        attributes[f"agentd.trace_metadata.{key}"] = attribute_value(value)
    try:
        root = tracer.start_root(name, context, attributes)
    except Exception:  # a broken tracer never fails a run
        logger.exception("run %s: its trace could not be started", state.run_id)
        return NO_TRACE
    if not root.is_recording():  # sampled out
        return NO_TRACE
    sensitive = tracer.include_sensitive_data and context.include_sensitive_data
    trace = RunTrace(tracer, root, base, sensitive)
    context.trace_id = trace.trace_id
    context.last_span_id = trace.span_id  # the next execution links to this one
    return trace


def attribute_value(value: Any) -> AttributeValue:
    """A JSON value as an attribute: scalars and lists of strings as they are, the
    rest as JSON text."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return dumps(value)
