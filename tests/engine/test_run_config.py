"""RunConfig's guardrails (added to every agent's) and handoff input filters."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine.errors import InputError
from app.engine.guardrails import GuardrailRegistry
from app.engine.models.test import TestModel

from .helpers import (
    Models,
    Recorder,
    ScriptedModel,
    agent,
    calls_reply,
    make_runner,
    new_state,
    run,
)


async def test_run_guardrails_are_checked_after_the_agents() -> None:
    spec = agent(input_guardrails=[{"type": "regex", "pattern": "never", "name": "own"}])
    rule = {"type": "blocklist", "words": ["secret"], "name": "run"}
    runner = make_runner(spec)
    tripped = await run(runner, spec, "a secret", input_guardrails=[rule])
    assert tripped.of("GuardrailTripped")[0].guardrail == "run"
    assert tripped.error.error.code == "input_guardrail_tripwire_triggered"

    output = {"type": "max_length", "max_length": 3}
    long = await run(runner, spec, "too long", output_guardrails=[output])
    assert long.error.error.code == "output_guardrail_tripwire_triggered"

    assert (await run(runner, spec, "fine")).last.status == "completed"


def test_unknown_python_guardrails_in_run_config_are_input_errors() -> None:
    spec = agent()
    guardrails = GuardrailRegistry()
    guardrails.register(lambda text, ctx: False, name="known")
    runner = make_runner(spec, guardrails=guardrails)
    with pytest.raises(InputError) as caught:
        new_state(
            runner,
            spec,
            "x",
            input_guardrails=[{"type": "python", "name": "known"}],
            output_guardrails=[{"type": "python", "name": "missing"}],
        )
    assert caught.value.errors == ["run_config.output_guardrails[0]: unknown guardrail 'missing'"]


HISTORY = [
    {"role": "user", "content": "earlier"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "t0", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "t0", "content": "1"},
    {"role": "assistant", "content": "one"},
]


async def _handoff(kind: str) -> tuple[Any, list[dict[str, Any]]]:
    script = ScriptedModel([calls_reply(("h1", "transfer_to_b", "{}"))])
    target = Recorder(TestModel())
    root = agent("root", model="script:m", handoffs=["b"])
    b = agent("b", instructions="I am b.")
    runner = make_runner(root, b, models=Models(script=script, test=target))
    result = await run(runner, root, "help me", history=HISTORY, handoff_input_filter=kind)
    return result, target.requests[0].messages


async def test_no_filter_passes_everything() -> None:
    result, seen = await _handoff("none")
    assert [m["role"] for m in seen] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
        "tool",
    ]
    assert result.last.status == "completed"


async def test_remove_tools_drops_every_tool_call_and_result() -> None:
    result, seen = await _handoff("remove_tools")
    assert seen == [
        {"role": "system", "content": "I am b."},
        {"role": "user", "content": "earlier"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "help me"},
    ]
    assert result.last.status == "completed"
    assert result.last.content == "help me"
    assert [m["role"] for m in result.last.messages] == ["user", "assistant"]
    assert result.of("AgentHandoff")[0].to_agent_id == "b"


async def test_last_user_message_keeps_only_it() -> None:
    result, seen = await _handoff("last_user_message")
    assert seen == [
        {"role": "system", "content": "I am b."},
        {"role": "user", "content": "help me"},
    ]
    assert result.state.history_length == 0
