"""Resolving the tool calls of the last model turn.

Each call without a result is planned first: answered at once (unknown tool,
bad JSON, a human's rejection, a client's result), run on the server (now, or
after a human confirmed or filled in arguments), or left pending for a human.
Server calls run concurrently; each result is appended to the state and
checkpointed before its `ToolCallCompleted` is yielded, and `CustomEvent`s from
the tools are forwarded as they happen. Cancelling the consumer cancels every
running tool task. Handoff calls are not handled here (see the loop). A call
is one `execute_tool` span of the run's trace, from its start to its result.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic_core import to_jsonable_python

from app.engine.context import Checkpoint, RunScope, ToolSlot, user_input_schema
from app.engine.events import CustomEvent, RunEvent, ToolCallCompleted, ToolCallStarted, utcnow_iso
from app.engine.output import Requirement, ToolExecution
from app.engine.remote import RemoteTool, execute_remote
from app.engine.tools import AnyTool, Emitter, RunContext, Tool, ToolOutcome, execute_tool


@dataclass(slots=True)
class _Run:
    tool: AnyTool | RemoteTool
    arguments: dict[str, Any]


@dataclass(slots=True)
class Done:
    """A call's outcome, ready to be appended."""

    call_id: str
    outcome: ToolOutcome
    status: Literal["completed", "error", "rejected"] = "completed"
    # The tool's copy of the session state before and after it ran.
    session_state: tuple[dict[str, Any], dict[str, Any]] | None = None


@dataclass(slots=True)
class _Crash:
    error: BaseException


def parse_arguments(raw: str) -> tuple[dict[str, Any], str | None]:
    """The call's arguments as an object, or an error the model can read."""
    try:
        value = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError as exc:
        return {}, f"the arguments are not valid JSON ({exc})"
    if not isinstance(value, dict):
        return {}, "the arguments must be a JSON object"
    return value, None


async def resolve_calls(
    scope: RunScope, calls: list[dict[str, Any]]
) -> AsyncGenerator[RunEvent | Checkpoint, None]:
    """Resolve `calls`; those that need a human are left in `state.pending`."""
    ready: list[Done] = []
    runs: dict[str, _Run] = {}
    for call in calls:
        plan = _plan(scope, call)
        call_id = call["id"]
        if isinstance(plan, Requirement):
            _mark_pending(scope, call, plan)
            continue
        yield start_call(scope, call)
        if isinstance(plan, _Run):
            runs[call_id] = plan
        else:
            ready.append(plan)
    for done in ready:
        completed = finish_call(scope, done)
        yield scope.checkpoint()
        yield completed
    if runs:
        async with aclosing(_run_concurrently(scope, runs)) as results:
            async for item in results:
                yield item


def _plan(scope: RunScope, call: dict[str, Any]) -> _Run | Done | Requirement:
    call_id, name = call["id"], call["function"]["name"]
    slot = scope.slots.get(name)
    arguments, problem = parse_arguments(call["function"].get("arguments", ""))
    if slot is None or slot.kind == "handoff":
        available = ", ".join(sorted(n for n, s in scope.slots.items() if s.kind != "handoff"))
        error = f"unknown tool {name!r}; available: {available}"
        return Done(call_id, ToolOutcome(error=error), "error")
    if problem is not None:
        return Done(call_id, ToolOutcome(error=f"tool {name}: {problem}"), "error")
    kind = _human_kind(slot)
    decision = scope.state.decisions.get(call_id)
    if kind is not None and decision is None:
        schema = None
        if kind == "user_input" and slot.tool is not None and slot.user_input_fields is not None:
            schema = user_input_schema(slot.tool.parameters, slot.user_input_fields)
        return Requirement(
            tool_call_id=call_id,
            tool_name=name,
            tool_args=arguments,
            kind=kind,
            user_input_schema=schema,
        )
    if kind == "external_execution":
        assert decision is not None
        return Done(call_id, ToolOutcome(result=decision.get("result")))
    if kind == "confirmation" and decision is not None and not decision["confirmed"]:
        note = decision.get("note")
        message = f"The user rejected the call to {name}." + (f" Note: {note}" if note else "")
        return Done(call_id, ToolOutcome(result=message), "rejected")
    if kind == "user_input" and decision is not None:
        arguments = {**arguments, **decision["user_input"]}
    assert slot.tool is not None
    return _Run(slot.tool, arguments)


HumanKind = Literal["confirmation", "user_input", "external_execution"]


def _human_kind(slot: ToolSlot) -> HumanKind | None:
    if slot.kind == "client":
        return "external_execution"
    if slot.user_input_fields is not None:
        return "user_input"
    if slot.requires_confirmation:
        return "confirmation"
    return None


def _execution(
    scope: RunScope, call: dict[str, Any], *, status: Literal["pending", "running"]
) -> ToolExecution:
    arguments, _ = parse_arguments(call["function"].get("arguments", ""))
    existing = scope.state.tool(call["id"])
    slot = scope.slots.get(call["function"]["name"])
    kind = slot.kind if slot is not None else "server"
    decision = scope.state.decisions.get(call["id"])
    if decision is not None and isinstance(decision.get("user_input"), dict):
        arguments = {**arguments, **decision["user_input"]}
    return ToolExecution(
        tool_call_id=call["id"],
        tool_name=call["function"]["name"],
        tool_args=arguments,
        status=status,
        kind=kind,
        agent_id=scope.spec.id,
        started_at=(existing.started_at if existing and existing.started_at else utcnow_iso()),
    )


def _mark_pending(scope: RunScope, call: dict[str, Any], requirement: Requirement) -> None:
    state = scope.state
    state.upsert_tool(_execution(scope, call, status="pending"))
    if all(req.tool_call_id != requirement.tool_call_id for req in state.pending):
        state.pending.append(requirement)


def start_call(scope: RunScope, call: dict[str, Any]) -> ToolCallStarted:
    """Record the call as running; returns its `ToolCallStarted`."""
    execution = _execution(scope, call, status="running")
    scope.state.upsert_tool(execution)
    scope.trace.tool_started(scope.agent_span, execution)
    return scope.event(ToolCallStarted, tool=execution.model_copy())


def finish_call(scope: RunScope, done: Done) -> ToolCallCompleted:
    """Append the tool result and complete the execution; returns the event to yield
    once the caller has checkpointed."""
    state = scope.state
    content = done.outcome.content()
    state.messages.append({"role": "tool", "tool_call_id": done.call_id, "content": content})
    execution = state.tool(done.call_id)
    assert execution is not None
    execution = execution.model_copy(
        update={
            "status": "error" if done.outcome.error is not None else done.status,
            "result": done.outcome.result,
            "error": done.outcome.error,
            "completed_at": utcnow_iso(),
        }
    )
    state.upsert_tool(execution)
    scope.trace.tool_finished(execution)
    if done.session_state is not None and done.outcome.error is None:
        _merge_session_state(state.session_state, *done.session_state)
    state.pending = [req for req in state.pending if req.tool_call_id != done.call_id]
    state.decisions.pop(done.call_id, None)
    state.metrics.tool_calls += 1
    result = done.outcome.error if done.outcome.error is not None else done.outcome.result
    return scope.event(ToolCallCompleted, tool=execution.model_copy(), content=result)


def _merge_session_state(
    shared: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> None:
    """Apply the keys a tool added, changed or removed (the last tool to finish wins a key).

    A tool that failed changes nothing."""
    for key in before.keys() - after.keys():
        shared.pop(key, None)
    for key, value in after.items():
        if key not in before or before[key] != value:
            shared[key] = to_jsonable_python(value, fallback=str)


async def _run_concurrently(
    scope: RunScope, runs: dict[str, _Run]
) -> AsyncGenerator[RunEvent | Checkpoint, None]:
    queue: asyncio.Queue[Done | _Crash | CustomEvent] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()

    def emitter_for(call_id: str) -> Emitter:
        def emit(name: str, data: Any) -> None:
            event = scope.event(CustomEvent, name=name, data=data, tool_call_id=call_id)
            if threading.get_ident() == loop_thread:
                queue.put_nowait(event)
            else:
                loop.call_soon_threadsafe(queue.put_nowait, event)

        return emit

    async def run_one(call_id: str, run: _Run) -> None:
        # Each tool works on its own copy (sync tools run in threads while the loop
        # persists the state); its changes are merged when its result is appended.
        before = copy.deepcopy(scope.state.session_state)
        session_state = copy.deepcopy(before)
        ctx = RunContext(
            run_id=scope.state.run_id,
            session_id=scope.state.session_id,
            user_id=scope.state.user_id,
            agent_id=scope.spec.id,
            tool_call_id=call_id,
            session_state=session_state,
            emitter=emitter_for(call_id),
        )
        try:
            if isinstance(run.tool, Tool):
                outcome = await execute_tool(run.tool, run.arguments, ctx)
            else:
                outcome = await execute_remote(run.tool, run.arguments, ctx)
        except Exception as exc:  # a bug in the engine, not in the tool
            queue.put_nowait(_Crash(exc))
            return
        queue.put_nowait(Done(call_id, outcome, session_state=(before, session_state)))

    tasks = [asyncio.create_task(run_one(call_id, run)) for call_id, run in runs.items()]
    remaining = len(tasks)
    try:
        while remaining:
            item = await queue.get()
            if isinstance(item, CustomEvent):
                yield item
            elif isinstance(item, _Crash):
                raise item.error
            else:
                remaining -= 1
                completed = finish_call(scope, item)
                yield scope.checkpoint()
                yield completed
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
