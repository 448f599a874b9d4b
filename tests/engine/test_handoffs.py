"""Handoffs: transfer_to_<agent> tools that switch the active agent mid-run."""

from __future__ import annotations

from app.engine.models.base import ContentDelta
from app.engine.models.test import TestModel
from app.engine.state import RunState

from .helpers import (
    Models,
    Recorder,
    ScriptedModel,
    agent,
    calls_reply,
    collapse,
    collect,
    make_runner,
    run,
)


async def test_handoff_switches_agent_instructions_tools_and_model() -> None:
    billing_model = ScriptedModel(["Billing here: your invoice is paid."])
    triage = agent(
        "triage", model="test:tools", instructions="Route the user.", handoffs=["billing"]
    )
    billing = agent(
        "billing",
        name="Billing",
        model="script:billing-model",
        instructions="You handle billing.",
        handoff_description="Invoices and refunds.",
        tools=["calculator"],
    )
    recorder = Recorder(TestModel())
    runner = make_runner(
        triage,
        billing,
        tools=_builtins(),
        models=Models(test=recorder, script=billing_model),
    )
    result = await run(runner, triage, "Where is my invoice?")

    assert collapse(result.names) == [
        "RunStarted",
        "Checkpoint",
        "ToolCallStarted",
        "Checkpoint",  # the transfer result and the switch are stored together
        "ToolCallCompleted",
        "AgentHandoff",
        "RunContent",
        "Checkpoint",
        "Checkpoint",
        "RunContentCompleted",
        "RunCompleted",
    ]
    # the triage agent saw the transfer tool with the target's handoff description
    (offered,) = recorder.requests[0].tools
    assert (offered.name, offered.description) == ("transfer_to_billing", "Invoices and refunds.")

    handoff = result.of("AgentHandoff")[0]
    assert (handoff.from_agent_id, handoff.to_agent_id, handoff.tool_call_id) == (
        "triage",
        "billing",
        "call_0_0",
    )
    assert result.of("ToolCallCompleted")[0].tool.kind == "handoff"
    assert result.of("ToolCallCompleted")[0].agent_id == "triage"
    after = result.events[result.events.index(handoff) : -1]
    assert {e.agent_id for e in after} == {"billing"}  # RunCompleted names the root agent

    # the next model request is the billing agent's: its instructions, its tools, its model
    request = billing_model.requests[0]
    assert request.model == "billing-model"
    assert request.messages[0] == {"role": "system", "content": "You handle billing."}
    assert [t.name for t in request.tools] == ["calculator"]
    assert [m["role"] for m in request.messages[1:]] == ["user", "assistant", "tool"]
    assert request.messages[-1]["content"] == '{"assistant":"billing"}'

    completed = result.last
    assert (completed.agent_id, completed.last_agent_id) == ("triage", "billing")
    assert completed.content == "Billing here: your invoice is paid."
    assert result.state.active_agent_id == "billing"
    assert completed.model == "script:billing-model"


async def test_only_the_first_handoff_of_a_turn_happens() -> None:
    script = ScriptedModel(
        [calls_reply(("h1", "transfer_to_b", "{}"), ("h2", "transfer_to_c", "{}"))]
    )
    root = agent("root", model="script:m", handoffs=["b", "c"])
    b, c = agent("b", instructions="I am b."), agent("c", instructions="I am c.")
    result = await run(make_runner(root, b, c, models=Models(script=script)), root, "go")

    assert [e.to_agent_id for e in result.of("AgentHandoff")] == ["b"]
    assert result.last.last_agent_id == "b"
    tools = {t.tool_call_id: t for t in result.last.tools}
    assert tools["h1"].status == "completed"
    assert tools["h2"].status == "error"
    assert "ignored" in (tools["h2"].error or "")
    assert result.last.content == "go"  # b echoes


async def test_a_missing_handoff_target_is_a_user_error() -> None:
    root = agent("root", handoffs=["ghost"])
    result = await run(make_runner(root), root)
    assert result.error.error.code == "user_error"
    assert "ghost" in result.error.error.message


def _builtins() -> list[object]:
    from app.engine.tools import BUILTIN_TOOLS

    return list(BUILTIN_TOOLS)


async def test_a_run_resumed_after_a_remove_tools_handoff_asks_the_next_agent() -> None:
    """The handing-off turn's text, left without its tool calls by `remove_tools`, is
    not the run's answer when the worker dies right after the handoff is stored."""
    turn = [ContentDelta("Passing you to B. "), *calls_reply(("h", "transfer_to_b", "{}"))]
    root = agent("root", model="root:m", handoffs=["b"])
    b = agent("b", model="b:m")
    b_model = ScriptedModel(["B here.", "B here."])
    models = Models(root=ScriptedModel([turn]), b=b_model)
    runner = make_runner(root, b, models=models)
    result = await run(runner, root, "go", handoff_input_filter="remove_tools")
    assert result.last.content == "B here."

    handoff = result.of("AgentHandoff")[0]
    resumed = RunState.model_validate(result.snapshot_before(handoff))
    assert resumed.messages[-1] == {"role": "assistant", "content": "Passing you to B. "}
    again = await collect(runner, resumed)
    assert again.last.event == "RunCompleted", again.names
    assert (again.last.content, again.last.last_agent_id) == ("B here.", "b")
    assert len(b_model.requests) == 2  # b was asked again, after the resume
    assert again.last.messages[-2:] == [
        {"role": "assistant", "content": "Passing you to B. "},
        {"role": "assistant", "content": "B here."},
    ]
