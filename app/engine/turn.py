"""One model call: stream the deltas as events, then append the assistant turn.

Content deltas become `RunContent` (`RunIntermediateContent` when an output
model writes the answer), reasoning deltas `ReasoningStarted` /
`ReasoningStep` / `ReasoningCompleted`; tool-call fragments are assembled by
index. When the stream ends, the assistant message is appended to the state
and the call's metrics recorded; the caller checkpoints. The call is one
`chat {model}` span of the run's trace.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from app.engine.context import RunScope
from app.engine.events import (
    ReasoningCompleted,
    ReasoningStarted,
    ReasoningStep,
    RunContent,
    RunEvent,
    RunIntermediateContent,
)
from app.engine.models.base import (
    FinishDelta,
    ModelClient,
    ModelDelta,
    ModelRequest,
    ReasoningDelta,
    ToolCallDelta,
    UsageDelta,
)
from app.engine.output import ModelCallMetrics


class _Turn:
    """The assistant message being assembled from one call's deltas."""

    def __init__(self, scope: RunScope) -> None:
        self.scope = scope
        self.started = time.monotonic()
        self.first_token: float | None = None
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.block: list[str] | None = None  # the reasoning block being streamed
        self.calls: dict[int, dict[str, Any]] = {}
        self.input_tokens = 0
        self.output_tokens = 0
        self.finish_reason: str | None = None
        # Under an output model the main model's text is not the answer.
        self.content_event: type[RunContent] | type[RunIntermediateContent] = (
            RunIntermediateContent if scope.spec.output_model else RunContent
        )

    def feed(self, delta: ModelDelta) -> list[RunEvent]:
        """Take one delta; returns the events it causes."""
        if isinstance(delta, UsageDelta):
            self.input_tokens += delta.input_tokens
            self.output_tokens += delta.output_tokens
            return []
        if isinstance(delta, FinishDelta):
            self.finish_reason = delta.reason  # the message's shape says it too: no event
            return []
        self._first_token()
        if isinstance(delta, ReasoningDelta):
            events: list[RunEvent] = []
            if self.block is None:
                self.block = []
                events.append(self.scope.event(ReasoningStarted))
            self.block.append(delta.text)
            self.reasoning.append(delta.text)
            return [*events, self.scope.event(ReasoningStep, reasoning_content=delta.text)]
        events = self.end_reasoning()
        if isinstance(delta, ToolCallDelta):
            self._add_call_fragment(delta)
        elif delta.text:
            self.text.append(delta.text)
            events.append(self.scope.event(self.content_event, content=delta.text))
        return events

    def end_reasoning(self) -> list[RunEvent]:
        if self.block is None:
            return []
        text, self.block = "".join(self.block), None
        return [self.scope.event(ReasoningCompleted, reasoning_content=text)]

    def _first_token(self) -> None:
        if self.first_token is None:
            self.first_token = time.monotonic() - self.started
            metrics = self.scope.state.metrics
            if metrics.time_to_first_token is None:
                metrics.time_to_first_token = round(self.scope.elapsed(), 6)

    def _add_call_fragment(self, delta: ToolCallDelta) -> None:
        call = self.calls.setdefault(delta.index, {"id": None, "name": "", "arguments": []})
        if delta.id:
            call["id"] = delta.id
        if delta.name:
            call["name"] = delta.name
        call["arguments"].append(delta.arguments)

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.text) or None}
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": call["id"] or f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {"name": call["name"], "arguments": "".join(call["arguments"])},
                }
                for _, call in sorted(self.calls.items())
            ]
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        return message


async def model_turn(
    scope: RunScope, client: ModelClient, request: ModelRequest, model: str
) -> AsyncGenerator[RunEvent, None]:
    """Stream one model call; append its assistant message to the state at the end."""
    state, trace = scope.state, scope.trace
    state.turns += 1
    state.model = model
    turn = _Turn(scope)
    span = trace.chat(scope.agent_span, model.partition(":")[0], request)
    deltas = client.stream(request)
    try:
        async for delta in deltas:
            for event in turn.feed(delta):
                yield event
    except BaseException as exc:  # GeneratorExit too: the consumer stopped early
        trace.failed(span, exc)
        if isinstance(exc, asyncio.CancelledError) and turn.text:
            state.content = "".join(turn.text)  # a cancelled run keeps the answer begun
        raise
    finally:
        aclose = getattr(deltas, "aclose", None)
        if aclose is not None:  # the consumer may stop early: release the provider stream
            await aclose()
    for event in turn.end_reasoning():
        yield event
    message = turn.message()
    state.messages.append(message)
    state.handed_off = False
    if turn.reasoning:
        previous, joined = state.reasoning_content, "".join(turn.reasoning)
        state.reasoning_content = f"{previous}\n\n{joined}" if previous else joined
    _record(scope, model, turn)
    trace.chat_done(span, message, turn.input_tokens, turn.output_tokens, turn.finish_reason)


def _record(scope: RunScope, model: str, turn: _Turn) -> None:
    first_token, duration = turn.first_token, time.monotonic() - turn.started
    metrics = scope.state.metrics
    metrics.model_calls += 1
    metrics.input_tokens += turn.input_tokens
    metrics.output_tokens += turn.output_tokens
    metrics.total_tokens = metrics.input_tokens + metrics.output_tokens
    metrics.calls.append(
        ModelCallMetrics(
            model=model,
            input_tokens=turn.input_tokens,
            output_tokens=turn.output_tokens,
            time_to_first_token=None if first_token is None else round(first_token, 6),
            duration=round(duration, 6),
        )
    )
