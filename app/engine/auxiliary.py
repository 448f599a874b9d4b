"""Model calls beside the agent's own turns (the memory manager, the session
summary, the parser and output models): one call, its whole answer gathered,
its metrics recorded on the run like any other model call."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from app.engine.errors import RunFailure
from app.engine.models.base import (
    ContentDelta,
    ModelClient,
    ModelProviderError,
    ModelRequest,
    ToolCallDelta,
    UsageDelta,
)
from app.engine.output import ModelCallMetrics, RunError
from app.engine.state import RunState

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Answer:
    """A model's whole answer: its text and its tool calls (name, arguments JSON)."""

    text: str = ""
    calls: list[tuple[str, str]] = field(default_factory=list)


def work_failed(state: RunState, work: str, exc: ModelProviderError | RunFailure) -> RunError:
    """The work after the answer (`work`: "memory update", "session summary") failed,
    as Agno has it: logged with the run's id and said in its event; the run goes on."""
    logger.warning("run %s: the %s failed: %s", state.run_id, work, exc)
    code = exc.code if isinstance(exc, RunFailure) else "model_provider_error"
    return RunError(code=code, message=str(exc))


async def ask(state: RunState, client: ModelClient, request: ModelRequest, model: str) -> Answer:
    """Call the model once and gather its answer; raises ModelProviderError."""
    answer = Answer()
    async for _ in relay(state, client, request, model, answer):
        pass
    return answer


async def relay(
    state: RunState, client: ModelClient, request: ModelRequest, model: str, answer: Answer
) -> AsyncGenerator[str, None]:
    """Call the model once, yielding its text as it streams and gathering the whole
    answer into `answer`; raises ModelProviderError."""
    started = time.monotonic()
    first_token: float | None = None
    text: list[str] = []
    calls: dict[int, list[str]] = {}
    usage = [0, 0]
    deltas = client.stream(request)
    try:
        async for delta in deltas:
            if isinstance(delta, UsageDelta):
                usage[0] += delta.input_tokens
                usage[1] += delta.output_tokens
                continue
            if first_token is None and isinstance(delta, ContentDelta | ToolCallDelta):
                first_token = time.monotonic() - started
            if isinstance(delta, ContentDelta):
                text.append(delta.text)
                if delta.text:
                    yield delta.text
            elif isinstance(delta, ToolCallDelta):
                call = calls.setdefault(delta.index, ["", ""])
                call[0] = delta.name or call[0]
                call[1] += delta.arguments
    finally:
        aclose = getattr(deltas, "aclose", None)
        if aclose is not None:
            await aclose()
    _record(state, model, usage, first_token, time.monotonic() - started)
    answer.text = "".join(text)
    answer.calls = [(name, arguments) for name, arguments in calls.values()]


def _record(
    state: RunState, model: str, usage: list[int], first_token: float | None, duration: float
) -> None:
    metrics = state.metrics
    metrics.model_calls += 1
    metrics.input_tokens += usage[0]
    metrics.output_tokens += usage[1]
    metrics.total_tokens = metrics.input_tokens + metrics.output_tokens
    metrics.calls.append(
        ModelCallMetrics(
            model=model,
            input_tokens=usage[0],
            output_tokens=usage[1],
            time_to_first_token=None if first_token is None else round(first_token, 6),
            duration=round(duration, 6),
        )
    )
