"""The agent loop: model call -> tools -> next step, until an answer, a pause or an error.

`Runner.stream(state)` reads the next step from the state alone (`next_step`),
so one call serves a fresh run, a run continued after human decisions, and a
run resumed after a crash. It yields typed events and, between them,
`Checkpoint`s: persist the state at each checkpoint before announcing what
follows. A run-time failure ends the stream with one `RunError` event;
`asyncio.CancelledError` propagates (the service announces `RunCancelled`).
Each call is one execution of the run, traced through the Runner's `Tracer`
(see `app.engine.tracing`; no-op by default).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from functools import partial
from typing import Any, Literal, Protocol

from app.engine.context import (
    Checkpoint,
    RunScope,
    ToolSlot,
    build_request,
    effective_model,
    resolve_tools,
    stamp,
)
from app.engine.errors import INTERNAL_ERROR_MESSAGE, InputError, RunFailure
from app.engine.events import (
    AgentHandoff,
    GuardrailTripped,
    RunContinued,
    RunErrorEvent,
    RunEvent,
    RunPaused,
    RunStarted,
    utcnow_iso,
)
from app.engine.execution import Done, finish_call, resolve_calls, start_call
from app.engine.finishing import Finisher
from app.engine.guardrails import GuardrailRegistry, run_guardrails
from app.engine.handoff_filters import HandoffInputFilter, filter_for_handoff
from app.engine.hooks import HookRegistry, default_hooks, run_hooks
from app.engine.inputs import (
    RunInput,
    check_decisions,
    client_tool_problems,
    hook_input,
    input_messages,
    input_text,
    override_problems,
    replace_input,
)
from app.engine.media import KINDS, UnsupportedMediaError, unsupported
from app.engine.memory import MemoryStore
from app.engine.memory_manager import MemoryManager
from app.engine.models.base import Message, ModelClient, ModelProviderError
from app.engine.output import TERMINAL_STATUSES, RunError, RunOutput
from app.engine.remote import RemoteTools
from app.engine.spec import GUARDRAIL, AgentSpec, ClientTool, Guardrail, split_model
from app.engine.state import RunOverrides, RunState
from app.engine.steps import (
    STEP_TYPES,
    NextStep,
    NextStepAfterRun,
    NextStepFinalOutput,
    NextStepHandoff,
    NextStepInterruption,
    NextStepRunAgain,
    NextStepRunTools,
    Phase,
    next_step,
)
from app.engine.summary import SessionSummary, SummaryStore
from app.engine.summary_manager import SummaryManager
from app.engine.tools import ToolOutcome, ToolRegistry
from app.engine.tracing import NO_TRACER, RunTrace, Span, Tracer, start_trace
from app.engine.turn import model_turn

__all__ = [
    "AgentResolver",
    "Checkpoint",
    "InputError",
    "ModelResolver",
    "NextStepFinalOutput",
    "NextStepHandoff",
    "NextStepInterruption",
    "NextStepRunAgain",
    "NextStepRunTools",
    "Runner",
    "next_step",
]

logger = logging.getLogger(__name__)

MAX_GUARDRAIL_DEPTH = 3


class AgentResolver(Protocol):
    async def get_agent(self, agent_id: str, version: int | None = None) -> AgentSpec:
        """The agent at `version` (the latest when None); raises KeyError if missing."""
        ...


class ModelResolver(Protocol):
    def providers(self) -> set[str]: ...

    def client(self, provider: str) -> ModelClient:
        """Raises KeyError for an unknown provider."""
        ...


class Runner:
    """Runs agents: builds states, applies human decisions, streams runs."""

    def __init__(
        self,
        *,
        models: ModelResolver,
        agents: AgentResolver,
        tools: ToolRegistry,
        guardrails: GuardrailRegistry,
        hooks: HookRegistry = default_hooks,
        memories: MemoryStore | None = None,
        summaries: SummaryStore | None = None,
        remote: RemoteTools | None = None,
        max_output_retries: int = 2,
        tracer: Tracer = NO_TRACER,
    ) -> None:
        self.models = models
        self.hooks = hooks
        self.memory = MemoryManager(memories, models.client)
        self.finisher = Finisher(
            client=models.client,
            hooks=hooks,
            memory=self.memory,
            summary=SummaryManager(summaries, models.client),
            guardrails=lambda scope, text: self._guardrails(scope, "output", text),
            max_output_retries=max_output_retries,
        )
        self.agents = agents
        self.tools = tools
        self.remote = remote
        self.guardrails = guardrails
        self.max_output_retries = max_output_retries
        self.tracer = tracer

    def new_state(
        self,
        spec: AgentSpec,
        input: RunInput,
        *,
        run_id: str,
        session_id: str,
        user_id: str | None,
        created_at: str,
        history: Sequence[Message] = (),
        session_state: dict[str, Any] | None = None,
        images: Sequence[dict[str, Any]] = (),
        media: dict[str, list[dict[str, Any]]] | None = None,
        model: str | None = None,
        model_settings: dict[str, Any] | None = None,
        max_turns: int | None = None,
        output_schema: dict[str, Any] | None = None,
        instructions: str | None = None,
        client_tools: Sequence[ClientTool] = (),
        session_summary: SessionSummary | None = None,
        input_guardrails: Sequence[Guardrail | dict[str, Any]] = (),
        output_guardrails: Sequence[Guardrail | dict[str, Any]] = (),
        handoff_input_filter: HandoffInputFilter = "none",
    ) -> RunState:
        """A fresh run of `spec`; raises InputError listing every problem with the input
        (UnsupportedMediaError when the model cannot take its media). `media` holds
        `audio`, `video` and `files` beside `images`; `instructions` and `client_tools`
        are the caller's additions for this run."""
        errors: list[str] = []
        messages: list[Message] = []
        try:
            given = {"images": list(images), **(media or {})} if images or media else {}
            messages = input_messages(spec, input, given)
        except InputError as exc:
            errors += exc.errors
        providers = self.models.providers()
        errors += override_problems(spec, providers, model, max_turns, output_schema)
        errors += client_tool_problems(spec, client_tools)
        guards = {
            stage: [GUARDRAIL.validate_python(config) for config in configs]
            for stage, configs in (("input", input_guardrails), ("output", output_guardrails))
        }
        for stage, configs in guards.items():
            for index, config in enumerate(configs):
                if config.type == "python" and config.name not in self.guardrails:
                    where = f"run_config.{stage}_guardrails[{index}]"
                    errors.append(f"{where}: unknown guardrail {config.name!r}")
        if errors:
            raise InputError(errors)
        if images or media:
            self._check_media(messages, model or spec.model_name)
        return RunState(
            run_id=run_id,
            session_id=session_id,
            user_id=user_id,
            created_at=created_at,
            agent_id=spec.id,
            agent_name=spec.name,
            agent_version=spec.version,
            active_agent_id=spec.id,
            active_agent_version=spec.version,
            messages=[dict(m) for m in history] + messages,
            history_length=len(history),
            max_turns=max_turns or spec.max_turns,
            overrides=RunOverrides(
                model=model,
                model_settings=model_settings,
                output_schema=output_schema,
                instructions=instructions,
                client_tools=list(client_tools),
                input_guardrails=guards["input"],
                output_guardrails=guards["output"],
                handoff_input_filter=handoff_input_filter,
            ),
            session_state=copy.deepcopy(session_state or {}),
            session_summary=session_summary,
            model=model or spec.model_name,
        )

    def _check_media(self, messages: list[Message], model: str) -> None:
        """Raises UnsupportedMediaError for the media `model` cannot take."""
        provider, _ = split_model(model)
        client = self.models.client(provider)
        problems = unsupported(messages, getattr(client, "media", KINDS), model)
        if problems:
            raise UnsupportedMediaError(problems)

    def apply_decisions(self, state: RunState, decisions: list[dict[str, Any]]) -> RunState:
        """A copy of the paused `state` carrying the client's decisions; executes nothing."""
        accepted = check_decisions(state, decisions)
        resumed = state.model_copy(deep=True)
        resumed.decisions.update({key: dict(value) for key, value in accepted.items()})
        return resumed

    def trace(self, state: RunState) -> RunTrace:
        """Start tracing one execution of `state` (its root span): call before
        `stream`, which it is given to; the caller ends it (`RunTrace.end`)."""
        return start_trace(self.tracer, state)

    def stream(
        self, state: RunState, trace: RunTrace | None = None
    ) -> AsyncGenerator[RunEvent | Checkpoint, None]:
        """Run (or continue) `state`, yielding events and checkpoints; mutates `state`.
        Without `trace`, the stream starts and ends the execution's trace itself."""
        if state.status in TERMINAL_STATUSES:
            raise ValueError(f"run {state.run_id} is already {state.status}")
        undecided = [r.tool_call_id for r in state.pending if r.tool_call_id not in state.decisions]
        if state.status == "paused" and undecided:
            raise ValueError(f"run {state.run_id} is paused: apply_decisions first")
        return self._stream(state, 0, trace)

    async def _stream(
        self, state: RunState, depth: int, trace: RunTrace | None, parent: Span | None = None
    ) -> AsyncGenerator[RunEvent | Checkpoint, None]:
        """`parent`: where the agents' spans hang (None: the root of `trace`)."""
        owned = trace is None
        if trace is None:
            trace = self.trace(state)
        scope: RunScope | None = None
        fresh = state.status == "queued"
        try:
            opening = _opening_event(state)
            state.status = "running"
            if opening is not None:
                yield opening
            spec = await self._agent(state.active_agent_id, state.active_agent_version)
            slots = await self._slots(spec, state)
            scope = RunScope(state, spec, slots, depth, trace, parent_span=parent)
            scope.agent_span = trace.agent(spec, state, parent)
            phase: Phase | None = self._opening(scope, fresh)
            while phase is not None:
                step: NextStep | None = None
                async with aclosing(phase) as items:
                    async for item in items:
                        if isinstance(item, STEP_TYPES):
                            step = item
                        else:
                            yield item
                phase = self._phase(scope, step) if step is not None else None
        except asyncio.CancelledError:
            state.status = "cancelled"
            raise
        except RunFailure as failure:
            for item in _fail(state, scope, failure.code, failure.message):
                yield item
        except ModelProviderError as exc:
            for item in _fail(state, scope, "model_provider_error", str(exc)):
                yield item
        except Exception:
            logger.exception("run %s failed", state.run_id)
            for item in _fail(state, scope, "internal_error", INTERNAL_ERROR_MESSAGE):
                yield item
        finally:
            if scope is not None:
                trace.agent_done(scope.agent_span, state)
            if owned:
                trace.end(state)

    def _phase(self, scope: RunScope, step: NextStep) -> Phase:
        if isinstance(step, NextStepRunAgain):
            return self._model_call(scope)
        if isinstance(step, NextStepRunTools):
            return self._tool_calls(scope, step)
        if isinstance(step, NextStepHandoff):
            return self._handoff(scope, step)
        if isinstance(step, NextStepInterruption):
            return self._interruption(scope, step)
        if isinstance(step, NextStepAfterRun):
            return self.finisher.after_run(scope)
        return self.finisher.final_output(scope, step)

    async def _opening(self, scope: RunScope, fresh: bool) -> Phase:
        if fresh:
            if scope.spec.pre_hooks:
                state = scope.state
                hooks = run_hooks(
                    scope,
                    "pre",
                    scope.spec.pre_hooks,
                    hook_input(state),
                    self.hooks,
                    partial(replace_input, state),
                )
                async with aclosing(hooks) as items:
                    async for item in items:
                        yield item
            text = input_text(scope.state)
            guard = self._guardrails(scope, "input", text)
            async with aclosing(guard) as items:
                async for item in items:
                    yield item
        yield next_step(scope.state)

    async def _model_call(self, scope: RunScope) -> Phase:
        state = scope.state
        if state.turns >= state.max_turns:
            raise RunFailure("max_turns_exceeded", f"Max turns ({state.max_turns}) exceeded")
        try:
            provider, name, _ = effective_model(scope.spec, state)
            client = self.models.client(provider)
        except (KeyError, ValueError):
            model = state.overrides.model or scope.spec.model_name
            raise RunFailure("user_error", f"no model provider for {model!r}") from None
        if self.memory.wants_context(scope.spec, state):
            await self.memory.load_context(state)
        request = build_request(scope.spec, state, scope.slots)
        async with aclosing(model_turn(scope, client, request, f"{provider}:{name}")) as events:
            async for event in events:
                yield event
        yield scope.checkpoint()
        yield next_step(state)

    async def _tool_calls(self, scope: RunScope, step: NextStepRunTools) -> Phase:
        def is_handoff(call: dict[str, Any]) -> bool:
            slot = scope.slots.get(call["function"]["name"])
            return slot is not None and slot.kind == "handoff"

        handoffs = [call for call in step.calls if is_handoff(call)]
        calls = [call for call in step.calls if not is_handoff(call)]
        async with aclosing(resolve_calls(scope, calls)) as items:
            async for item in items:
                yield item
        if scope.state.pending:
            yield NextStepInterruption(list(scope.state.pending))
        elif handoffs:
            yield NextStepHandoff(handoffs[0], handoffs[1:])
        else:
            yield NextStepRunAgain()

    async def _handoff(self, scope: RunScope, step: NextStepHandoff) -> Phase:
        """Answer the transfer call, switch the active agent; one checkpoint for both."""
        state, source = scope.state, scope.spec
        target = scope.slots[step.call["function"]["name"]].target
        assert target is not None
        slots = await self._slots(target, state)
        for call in [step.call, *step.ignored]:
            yield start_call(scope, call)
        trace = scope.trace
        trace.handoff(scope.agent_span, source, target, step.call["id"])
        completed = [
            finish_call(scope, Done(step.call["id"], ToolOutcome({"assistant": target.id})))
        ]
        for call in step.ignored:
            error = "only one handoff per turn is performed; this one was ignored"
            completed.append(finish_call(scope, Done(call["id"], ToolOutcome(error=error))))
        state.active_agent_id, state.active_agent_version = target.id, target.version
        scope.spec, scope.slots = target, slots
        trace.agent_done(scope.agent_span, state)
        scope.agent_span = trace.agent(target, state, scope.parent_span)
        filter_for_handoff(state, state.overrides.handoff_input_filter)
        state.handed_off = True
        yield scope.checkpoint()
        for event in completed:
            yield event
        yield scope.event(
            AgentHandoff,
            from_agent_id=source.id,
            to_agent_id=target.id,
            tool_call_id=step.call["id"],
        )
        yield NextStepRunAgain()

    async def _interruption(self, scope: RunScope, step: NextStepInterruption) -> Phase:
        scope.state.status = "paused"
        yield scope.checkpoint()
        pending = [t.model_copy() for t in scope.state.tools if t.status == "pending"]
        yield scope.event(RunPaused, requirements=step.requirements, tools=pending)

    def _guardrails(
        self, scope: RunScope, stage: Literal["input", "output"], text: str
    ) -> AsyncGenerator[GuardrailTripped, None]:
        classify = partial(self._classify, scope)
        return run_guardrails(scope, stage, text, registry=self.guardrails, classify=classify)

    async def _classify(self, parent: RunScope, agent_id: str, text: str, span: Span) -> RunOutput:
        """Run a stored agent on `text`, without persistence: an `agent` guardrail's
        classifier (its spans under the guardrail's `span`)."""
        if parent.depth >= MAX_GUARDRAIL_DEPTH:
            raise RunFailure("user_error", "guardrail agents are nested too deeply")
        spec = await self._agent(agent_id, None)
        try:
            state = self.new_state(
                spec,
                text,
                run_id=f"{parent.state.run_id}:guardrail:{agent_id}",
                session_id=parent.state.session_id,
                user_id=parent.state.user_id,
                created_at=utcnow_iso(),
            )
        except InputError as exc:
            raise RunFailure("user_error", f"guardrail agent {agent_id!r}: {exc}") from None
        state.streaming = False  # nobody sees its events: whole answers suffice
        stream = self._stream(state, parent.depth + 1, parent.trace, span)
        async with aclosing(stream) as items:
            async for _ in items:
                pass
        if state.status != "completed":
            code = state.error.code if state.error else "user_error"
            reason = state.error.message if state.error else f"the run ended {state.status}"
            raise RunFailure(code, f"guardrail agent {agent_id!r} failed: {reason}")
        return state.to_output()

    async def _agent(self, agent_id: str, version: int | None) -> AgentSpec:
        try:
            return await self.agents.get_agent(agent_id, version)
        except KeyError:
            raise RunFailure("user_error", f"agent {agent_id!r} not found") from None

    async def _slots(self, spec: AgentSpec, state: RunState) -> dict[str, ToolSlot]:
        slots = await resolve_tools(
            spec,
            self.tools,
            lambda agent_id: self._agent(agent_id, None),
            state.overrides.client_tools,
            self.remote,
        )
        if spec.memory.agentic:
            slots.update(self.memory.slots(spec, state))
        return slots


def _opening_event(state: RunState) -> RunStarted | RunContinued | None:
    """`RunStarted` for a fresh run, `RunContinued` after decisions, nothing on recovery."""
    if state.status == "queued":
        return stamp(
            state,
            RunStarted,
            agent_name=state.agent_name,
            agent_version=state.agent_version,
            model=state.model,
        )
    return stamp(state, RunContinued) if state.status == "paused" else None


def _fail(
    state: RunState, scope: RunScope | None, code: str, message: str
) -> list[RunEvent | Checkpoint]:
    state.status = "error"
    state.error = RunError(code=code, message=message)
    checkpoint = scope.checkpoint() if scope is not None else Checkpoint(state)
    error = RunError(code=code, message=message)
    return [checkpoint, stamp(state, RunErrorEvent, error=error, content=message)]
