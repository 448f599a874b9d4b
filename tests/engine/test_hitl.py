"""Human in the loop: pauses, decisions, resuming, JSON round trips, crash recovery."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from app.engine.errors import InputError
from app.engine.spec import ClientTool, ToolUse
from app.engine.state import RunState

from .helpers import (
    Models,
    ScriptedModel,
    agent,
    calls_reply,
    collapse,
    collect,
    make_runner,
    run,
)

executed: Counter[str] = Counter()


def transfer(to: str, amount: int) -> str:
    """Move money."""
    executed["transfer"] += 1
    return f"sent {amount} to {to}"


def add(a: int, b: int) -> int:
    executed["add"] += 1
    return a + b


TOOLS = [transfer, add]


@pytest.fixture(autouse=True)
def _reset() -> None:
    executed.clear()


def confirm_agent() -> Any:
    return agent(
        model="test:tools",
        tools=[ToolUse(name="transfer", requires_confirmation=True), "add"],
    )


async def test_confirmation_pauses_runs_the_rest_then_continues() -> None:
    spec = confirm_agent()
    runner = make_runner(spec, tools=TOOLS)
    paused = await run(runner, spec, "pay bob")

    assert paused.names == [
        "RunStarted",
        "Checkpoint",
        "ToolCallStarted",  # add needs no human: it runs now
        "Checkpoint",
        "ToolCallCompleted",
        "Checkpoint",
        "RunPaused",
    ]
    assert paused.of("ToolCallStarted")[0].tool.tool_name == "add"
    event = paused.last
    assert [r.model_dump() for r in event.requirements] == [
        {
            "tool_call_id": "call_0_0",
            "tool_name": "transfer",
            "tool_args": {"to": "a", "amount": 0},
            "kind": "confirmation",
            "user_input_schema": None,
        }
    ]
    assert [(t.tool_name, t.status) for t in event.tools] == [("transfer", "pending")]
    assert paused.state.status == "paused"
    persisted = paused.snapshot_before(event)  # stored before RunPaused is announced
    assert persisted["status"] == "paused"
    assert [r["tool_call_id"] for r in persisted["pending"]] == ["call_0_0"]
    assert paused.state.to_output().requirements == event.requirements
    assert executed == {"add": 1}

    state = runner.apply_decisions(paused.state, [{"tool_call_id": "call_0_0", "confirmed": True}])
    assert paused.state.decisions == {}  # apply_decisions returns a copy
    resumed = await collect(runner, state)
    assert collapse(resumed.names) == [
        "RunContinued",
        "ToolCallStarted",
        "Checkpoint",
        "ToolCallCompleted",
        "RunContent",
        "Checkpoint",
        "Checkpoint",
        "RunContentCompleted",
        "RunCompleted",
    ]
    assert resumed.last.content == "Called 2 tools."
    assert executed == {"add": 1, "transfer": 1}
    assert {t.tool_name: t.status for t in resumed.last.tools} == {
        "transfer": "completed",
        "add": "completed",
    }
    assert resumed.last.requirements == [] and resumed.state.decisions == {}


async def test_rejection_tells_the_model_and_runs_nothing() -> None:
    spec = confirm_agent()
    runner = make_runner(spec, tools=TOOLS)
    paused = await run(runner, spec)
    state = runner.apply_decisions(
        paused.state, [{"tool_call_id": "call_0_0", "confirmed": False, "note": "too much"}]
    )
    resumed = await collect(runner, state)

    assert executed == {"add": 1}
    rejected = resumed.of("ToolCallCompleted")[0].tool
    assert (rejected.tool_name, rejected.status) == ("transfer", "rejected")
    message = next(m for m in state.messages if m.get("tool_call_id") == "call_0_0")
    assert message["content"] == "The user rejected the call to transfer. Note: too much"
    assert resumed.last.status == "completed"


async def test_user_input_fills_the_arguments_the_user_owns() -> None:
    spec = agent(
        model="test:tools",
        tools=[ToolUse(name="transfer", requires_user_input=True, user_input_fields=["amount"])],
    )
    models = Models()
    runner = make_runner(spec, tools=TOOLS, models=models)
    paused = await run(runner, spec)

    (requirement,) = paused.last.requirements
    assert requirement.kind == "user_input"
    assert requirement.tool_args == {"to": "a"}  # the model was not asked for the amount
    assert requirement.user_input_schema == {
        "type": "object",
        "properties": {"amount": {"type": "integer"}},
        "required": ["amount"],
        "additionalProperties": False,
    }
    state = runner.apply_decisions(
        paused.state, [{"tool_call_id": requirement.tool_call_id, "user_input": {"amount": 10}}]
    )
    resumed = await collect(runner, state)
    tool = resumed.last.tools[0]
    assert (tool.result, tool.tool_args) == ("sent 10 to a", {"to": "a", "amount": 10})
    assert executed == {"transfer": 1}


async def test_client_tools_pause_for_external_execution() -> None:
    location = ClientTool(
        type="client",
        name="get_location",
        description="Where the user is.",
        parameters={"type": "object", "properties": {"precise": {"type": "boolean"}}},
    )
    script = ScriptedModel(
        lambda request, i: (
            calls_reply(("loc", "get_location", '{"precise": true}'))
            if i == 0
            else f"You are in {request.messages[-1]['content']}."
        )
    )
    spec = agent(model="script:m", tools=[location])
    runner = make_runner(spec, models=Models(script=script))
    paused = await run(runner, spec)

    assert script.requests[0].tools[0].parameters == location.parameters
    (requirement,) = paused.last.requirements
    assert (requirement.kind, requirement.tool_args) == ("external_execution", {"precise": True})
    assert paused.last.tools[0].kind == "client"
    state = runner.apply_decisions(paused.state, [{"tool_call_id": "loc", "result": "Berlin"}])
    resumed = await collect(runner, state)
    assert resumed.last.content == "You are in Berlin."
    assert resumed.last.tools[0].result == "Berlin"


async def test_apply_decisions_lists_every_problem() -> None:
    spec = agent(
        model="test:tools",
        tools=[
            ToolUse(name="transfer", requires_confirmation=True),
            ToolUse(name="add", requires_user_input=True),
        ],
    )
    runner = make_runner(spec, tools=TOOLS)
    paused = await run(runner, spec)
    assert [r.kind for r in paused.last.requirements] == ["confirmation", "user_input"]

    cases: list[tuple[list[Any], list[str]]] = [
        (
            [],
            [
                "tools: no decision for pending tool call 'call_0_0' (transfer)",
                "tools: no decision for pending tool call 'call_0_1' (add)",
            ],
        ),
        (
            [
                {"tool_call_id": "call_0_0", "result": "x"},
                {"tool_call_id": "call_0_1", "user_input": {"a": "one", "b": 2, "c": 3}},
                {"tool_call_id": "call_9"},
                {"confirmed": True},
            ],
            [
                "tools[0] (call_0_0): transfer needs confirmation: send 'confirmed'",
                "tools[1] (call_0_1): user_input: Additional properties are not allowed"
                " ('c' was unexpected)",
                "tools[1] (call_0_1): user_input['a']: 'one' is not of type 'integer'",
                "tools[2]: no pending tool call 'call_9'",
                "tools[3]: must be an object with a string 'tool_call_id'",
            ],
        ),
        (
            [
                {"tool_call_id": "call_0_0", "confirmed": "yes", "note": 5, "result": 1},
                {"tool_call_id": "call_0_0", "confirmed": True},
                {"tool_call_id": "call_0_1", "user_input": {"a": 1}},
            ],
            [
                "tools[0] (call_0_0): 'result' does not apply to confirmation",
                "tools[0] (call_0_0): 'confirmed' must be true or false",
                "tools[0] (call_0_0): 'note' must be a string",
                "tools[1]: a second decision for tool call 'call_0_0'",
                "tools[2] (call_0_1): user_input: 'b' is a required property",
            ],
        ),
    ]
    for decisions, errors in cases:
        with pytest.raises(InputError) as caught:
            runner.apply_decisions(paused.state, decisions)
        assert caught.value.errors == errors
    assert paused.state.decisions == {}

    with pytest.raises(ValueError, match="apply_decisions first"):
        runner.stream(paused.state)
    ok = runner.apply_decisions(
        paused.state,
        [
            {"tool_call_id": "call_0_0", "confirmed": True},
            {"tool_call_id": "call_0_1", "user_input": {"a": 1, "b": 2}},
        ],
    )
    finished = await collect(runner, ok)
    assert {t.tool_name: t.result for t in finished.last.tools} == {
        "transfer": "sent 0 to a",
        "add": 3,
    }
    with pytest.raises(InputError, match="not paused"):
        runner.apply_decisions(finished.state, [])


async def test_paused_state_round_trips_through_json_into_a_fresh_runner() -> None:
    spec = confirm_agent()
    paused = await run(make_runner(spec, tools=TOOLS), spec, "pay bob")
    stored = json.dumps(paused.state.model_dump(mode="json"))

    fresh_runner = make_runner(spec, tools=TOOLS)  # as after a restart
    loaded = RunState.model_validate(json.loads(stored))
    assert loaded == paused.state
    state = fresh_runner.apply_decisions(loaded, [{"tool_call_id": "call_0_0", "confirmed": True}])
    resumed = await collect(fresh_runner, state)

    executed.clear()
    plain = agent(model="test:tools", tools=["transfer", "add"])
    straight = await run(make_runner(plain, tools=TOOLS), plain, "pay bob")

    assert resumed.last.content == straight.last.content == "Called 2 tools."
    assert _in_call_order(resumed.state.new_messages()) == _in_call_order(
        straight.state.new_messages()
    )
    assert _results(resumed.state) == _results(straight.state)
    assert resumed.state.metrics.model_calls == straight.state.metrics.model_calls == 2
    assert RunState.model_validate(resumed.state.model_dump(mode="json")) == resumed.state


def _in_call_order(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool results are appended as calls finish: sort each run of them by call id."""
    ordered: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for message in [*messages, {"role": "end"}]:
        if message["role"] == "tool":
            results.append(message)
            continue
        ordered += sorted(results, key=lambda m: m["tool_call_id"]) + [message]
        results = []
    return ordered[:-1]


def _results(state: RunState) -> dict[str, Any]:
    return {t.tool_call_id: (t.tool_name, t.status, t.result) for t in state.tools}


def crashed_state(runner: Any, spec: Any) -> RunState:
    """A run that crashed after the model asked for two tools and one result was stored."""
    state = runner.new_state(
        spec, "go", run_id="r", session_id="s", user_id=None, created_at="2025-01-01T00:00:00Z"
    )
    state.status = "running"
    state.turns = 1
    state.messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a":1,"b":2}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "transfer", "arguments": '{"to":"x","amount":5}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "3"},
    ]
    return RunState.model_validate(json.loads(json.dumps(state.model_dump(mode="json"))))


async def test_crash_resume_runs_only_the_missing_tool_call() -> None:
    spec = agent(model="test:tools", tools=["add", "transfer"])
    runner = make_runner(spec, tools=TOOLS)
    resumed = await collect(runner, crashed_state(runner, spec))

    assert executed == {"transfer": 1}  # add already had its result: it never runs twice
    assert collapse(resumed.names) == [
        "ToolCallStarted",
        "Checkpoint",
        "ToolCallCompleted",
        "RunContent",
        "Checkpoint",
        "Checkpoint",
        "RunContentCompleted",
        "RunCompleted",
    ]
    assert resumed.of("ToolCallStarted")[0].tool.tool_call_id == "c2"
    assert resumed.last.content == "Called 2 tools."
    assert [m.get("tool_call_id") for m in resumed.state.messages if m["role"] == "tool"] == [
        "c1",
        "c2",
    ]


async def test_crash_after_the_final_answer_completes_without_calling_the_model() -> None:
    script = ScriptedModel(["unused"])
    spec = agent(model="script:m")
    runner = make_runner(spec, models=Models(script=script))
    state = runner.new_state(
        spec, "hi", run_id="r", session_id="s", user_id=None, created_at="2025-01-01T00:00:00Z"
    )
    state.status, state.turns = "running", 1
    state.messages.append({"role": "assistant", "content": "already answered"})
    resumed = await collect(runner, state)
    assert resumed.names == ["Checkpoint", "RunContentCompleted", "RunCompleted"]
    assert resumed.last.content == "already answered"
    assert script.requests == []
