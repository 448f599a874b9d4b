"""The loop's next steps, and `next_step`: what to do, read from a state alone.

A phase of the loop yields events and checkpoints, then the step that follows
it; `Runner.stream` dispatches on the step's type.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from app.engine.context import Checkpoint
from app.engine.events import RunEvent
from app.engine.models.base import Message
from app.engine.output import Requirement
from app.engine.state import RunState


@dataclass(frozen=True, slots=True)
class NextStepRunAgain:
    """Call the model (again)."""


@dataclass(frozen=True, slots=True)
class NextStepRunTools:
    """Resolve the last turn's tool calls that have no result yet."""

    calls: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class NextStepHandoff:
    """Switch the active agent; `ignored` are further handoff calls of the same turn."""

    call: dict[str, Any]
    ignored: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NextStepInterruption:
    """Pause until a human answers `requirements`."""

    requirements: list[Requirement]


@dataclass(frozen=True, slots=True)
class NextStepFinalOutput:
    """The last turn answered without tool calls: validate, guard, complete."""

    message: Message


@dataclass(frozen=True, slots=True)
class NextStepAfterRun:
    """The answer is settled: the work after the run (memories, the session's summary),
    then complete."""


NextStep = (
    NextStepRunAgain
    | NextStepRunTools
    | NextStepHandoff
    | NextStepInterruption
    | NextStepFinalOutput
    | NextStepAfterRun
)
STEP_TYPES = (
    NextStepRunAgain,
    NextStepRunTools,
    NextStepHandoff,
    NextStepInterruption,
    NextStepFinalOutput,
    NextStepAfterRun,
)
Phase = AsyncGenerator[RunEvent | Checkpoint | NextStep, None]


def next_step(
    state: RunState,
) -> NextStepRunAgain | NextStepRunTools | NextStepFinalOutput | NextStepAfterRun:
    """What to do next, read from the messages alone (once the answer is settled,
    the work after the run)."""
    if state.answered:
        return NextStepAfterRun()
    if state.turns == 0 or state.handed_off:
        return NextStepRunAgain()
    messages = state.messages
    for index in range(len(messages) - 1, state.history_length - 1, -1):
        if messages[index]["role"] == "assistant":
            break
    else:
        return NextStepRunAgain()
    calls = messages[index].get("tool_calls") or []
    if not calls:
        last = index == len(messages) - 1
        return NextStepFinalOutput(messages[index]) if last else NextStepRunAgain()
    answered = {m.get("tool_call_id") for m in messages[index + 1 :] if m["role"] == "tool"}
    missing = [call for call in calls if call["id"] not in answered]
    return NextStepRunTools(missing) if missing else NextStepRunAgain()
