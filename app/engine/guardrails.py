"""Guardrails: checks on a run's input and final output that can stop the run.

Five kinds (see `app.engine.spec`): `regex`, `blocklist`, `max_length`,
`agent` (another stored agent classifies the text) and `python` (a function
registered with `@guardrail` in a module named in TOOL_MODULES). Each check
answers a `GuardrailResult`; `tripwire_triggered` stops the run. Each check
is one `apply_guardrail` span of the run's trace.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import inspect
import re
import string
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from pydantic import BaseModel

from app.engine.context import RunScope
from app.engine.errors import RunFailure
from app.engine.events import GuardrailTripped
from app.engine.modules import defined_in
from app.engine.output import RunOutput
from app.engine.spec import (
    AgentGuardrail,
    BlocklistGuardrail,
    Guardrail,
    MaxLengthGuardrail,
    PythonGuardrail,
    RegexGuardrail,
)
from app.engine.tracing import Span

TRIP_WORDS = frozenset({"true", "yes", "trip"})


class GuardrailResult(BaseModel):
    tripwire_triggered: bool
    output_info: Any = None
    message: str = ""


@dataclass(slots=True)
class GuardrailContext:
    """What a Python guardrail learns about the run (`session_state` is a copy)."""

    run_id: str
    session_id: str
    user_id: str | None
    agent_id: str
    stage: str  # "input" | "output"
    session_state: dict[str, Any] = field(default_factory=dict)


GuardrailFunction = Callable[[str, GuardrailContext], Any]
# Runs a stored agent on the text without persistence, its spans under the guardrail's:
# (agent_id, text, span) -> its RunOutput.
Classifier = Callable[[str, str, Span], Awaitable[RunOutput]]


class PythonGuardrailFunction:
    """A registered guardrail function; calling it calls the function."""

    def __init__(self, function: GuardrailFunction, name: str | None = None) -> None:
        self.function = function
        self.name = name or function.__name__

    def __call__(self, text: str, ctx: GuardrailContext) -> Any:
        return self.function(text, ctx)

    async def check(self, text: str, ctx: GuardrailContext) -> GuardrailResult:
        if inspect.iscoroutinefunction(self.function):
            answer = await self.function(text, ctx)
        else:
            answer = await asyncio.to_thread(self.function, text, ctx)
            if inspect.isawaitable(answer):
                answer = await answer
        return _as_result(answer)


def _as_result(answer: Any) -> GuardrailResult:
    if isinstance(answer, GuardrailResult):
        return answer
    if isinstance(answer, bool):
        return GuardrailResult(tripwire_triggered=answer)
    if isinstance(answer, dict):
        return GuardrailResult.model_validate(answer)
    if hasattr(answer, "tripwire_triggered"):
        return GuardrailResult(
            tripwire_triggered=bool(answer.tripwire_triggered),
            output_info=getattr(answer, "output_info", None),
        )
    raise TypeError(f"a guardrail must return a bool or a GuardrailResult, not {type(answer)}")


class GuardrailRegistry:
    """Python guardrails by name."""

    def __init__(self) -> None:
        self._items: dict[str, PythonGuardrailFunction] = {}
        self._lock = threading.Lock()

    def register(
        self, function: GuardrailFunction | PythonGuardrailFunction, *, name: str | None = None
    ) -> PythonGuardrailFunction:
        if isinstance(function, PythonGuardrailFunction) and name is None:
            item = function
        else:
            raw = function.function if isinstance(function, PythonGuardrailFunction) else function
            item = PythonGuardrailFunction(raw, name)
        with self._lock:
            existing = self._items.get(item.name)
            if existing is not None and existing is not item:
                raise ValueError(f"a guardrail named {item.name!r} is already registered")
            self._items[item.name] = item
        return item

    @overload
    def guardrail(self, function: GuardrailFunction, /) -> PythonGuardrailFunction: ...

    @overload
    def guardrail(
        self, function: None = None, /, *, name: str | None = None
    ) -> Callable[[GuardrailFunction], PythonGuardrailFunction]: ...

    def guardrail(
        self, function: GuardrailFunction | None = None, /, *, name: str | None = None
    ) -> Any:
        """Decorator: `@registry.guardrail` or `@registry.guardrail(name=...)`."""

        def decorate(func: GuardrailFunction) -> PythonGuardrailFunction:
            return self.register(func, name=name)

        return decorate(function) if function is not None else decorate

    def get(self, name: str) -> PythonGuardrailFunction:
        """Raises KeyError."""
        return self._items[name]

    def list(self) -> list[PythonGuardrailFunction]:
        return sorted(self._items.values(), key=lambda g: g.name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def load_modules(self, names: Iterable[str]) -> builtins.list[str]:
        """Import each module; register the guardrails it defines. Returns their names."""
        found: builtins.list[str] = []
        for value in defined_in(names, PythonGuardrailFunction):
            self.register(value)
            found.append(value.name)
        return found


default_guardrails = GuardrailRegistry()


@overload
def guardrail(function: GuardrailFunction, /) -> PythonGuardrailFunction: ...


@overload
def guardrail(
    *, name: str | None = None
) -> Callable[[GuardrailFunction], PythonGuardrailFunction]: ...


def guardrail(function: GuardrailFunction | None = None, /, *, name: str | None = None) -> Any:
    """Register `(text, ctx) -> bool | GuardrailResult` (sync or async) in the default registry."""
    if function is not None:
        return default_guardrails.guardrail(function)
    return default_guardrails.guardrail(name=name)


def guardrail_name(config: Guardrail) -> str:
    if config.name:
        return config.name
    if isinstance(config, AgentGuardrail):
        return f"agent:{config.agent_id}"
    return config.type


async def check(
    config: Guardrail,
    text: str,
    ctx: GuardrailContext,
    *,
    registry: GuardrailRegistry,
    classify: Classifier,
    span: Span,
) -> GuardrailResult:
    """Evaluate one guardrail on `text` (`span`: its span). Raises RunFailure for an
    unregistered python guardrail."""
    if isinstance(config, RegexGuardrail):
        flags = re.IGNORECASE if config.ignore_case else 0
        match = re.search(config.pattern, text, flags)
        matched = {"match": match.group(0)} if match else None
        return GuardrailResult(tripwire_triggered=match is not None, output_info=matched)
    if isinstance(config, BlocklistGuardrail):
        flags = 0 if config.case_sensitive else re.IGNORECASE
        found = [
            word
            for word in config.words
            if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, flags) is not None
        ]
        return GuardrailResult(
            tripwire_triggered=bool(found), output_info={"words": found} if found else None
        )
    if isinstance(config, MaxLengthGuardrail):
        lengths = {"length": len(text), "max_length": config.max_length}
        return GuardrailResult(
            tripwire_triggered=len(text) > config.max_length, output_info=lengths
        )
    if isinstance(config, AgentGuardrail):
        output = await classify(config.agent_id, text, span)
        return GuardrailResult(
            tripwire_triggered=classifier_trips(output.content),
            output_info={"agent_id": config.agent_id, "content": output.content},
        )
    assert isinstance(config, PythonGuardrail)
    try:
        function = registry.get(config.name)
    except KeyError:
        raise RunFailure(
            "user_error", f"python guardrail {config.name!r} is not registered"
        ) from None
    return await function.check(text, ctx)


def classifier_trips(content: Any) -> bool:
    """A classifier's answer: structured `tripwire_triggered: true`, or text "true"/"yes"/"trip"."""
    if isinstance(content, dict):
        return content.get("tripwire_triggered") is True
    if isinstance(content, str):
        ignored = set(string.punctuation + string.whitespace)
        return "".join(ch for ch in content if ch not in ignored).lower() in TRIP_WORDS
    return False


async def run_guardrails(
    scope: RunScope,
    stage: Literal["input", "output"],
    text: str,
    *,
    registry: GuardrailRegistry,
    classify: Classifier,
) -> AsyncGenerator[GuardrailTripped, None]:
    """Check the active agent's guardrails of `stage` in order, then the run's own
    (`run_config`); the first that trips
    is announced (`GuardrailTripped`), then raises RunFailure with the stage's code."""
    state, trace = scope.state, scope.trace
    overrides = state.overrides
    if stage == "input":
        configs = [*scope.spec.input_guardrails, *overrides.input_guardrails]
    else:
        configs = [*scope.spec.output_guardrails, *overrides.output_guardrails]
    for config in configs:
        session_state = copy.deepcopy(state.session_state)  # guardrails only read it
        ctx = GuardrailContext(
            state.run_id, state.session_id, state.user_id, scope.spec.id, stage, session_state
        )
        name = guardrail_name(config)
        span = trace.guardrail(scope.agent_span, name, config.type, stage)
        try:
            result = await check(config, text, ctx, registry=registry, classify=classify, span=span)
        except BaseException as exc:
            trace.failed(span, exc)
            raise
        trace.guardrail_done(span, result.tripwire_triggered)
        if result.tripwire_triggered:
            yield scope.event(
                GuardrailTripped,
                guardrail=name,
                guardrail_type=config.type,
                stage=stage,
                message=result.message,
                output_info=result.output_info,
            )
            code = f"{stage}_guardrail_tripwire_triggered"
            raise RunFailure(code, f"The {stage} guardrail {name!r} tripped")
