"""Guardrails of every kind, on input and on output."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.engine.guardrails import (
    GuardrailContext,
    GuardrailRegistry,
    GuardrailResult,
    classifier_trips,
)
from app.engine.models.test import TestModel

from .helpers import Models, Recorder, ScriptedModel, agent, collapse, make_runner, run

TRIPPED_INPUT = ["RunStarted", "GuardrailTripped", "Checkpoint", "RunError"]


async def _run_guarded(spec: Any, text: str, *others: Any, **kwargs: Any) -> Any:
    recorder = Recorder(TestModel())
    runner = make_runner(spec, *others, models=Models(test=recorder), **kwargs)
    return await run(runner, spec, text), recorder


async def test_regex_input_guardrail_trips_before_any_model_call() -> None:
    spec = agent(input_guardrails=[{"type": "regex", "pattern": r"\d{4}-\d{4}", "name": "card"}])
    result, recorder = await _run_guarded(spec, "my card is 1234-5678")

    assert result.names == TRIPPED_INPUT
    tripped = result.of("GuardrailTripped")[0]
    assert (tripped.guardrail, tripped.guardrail_type, tripped.stage) == ("card", "regex", "input")
    assert tripped.output_info == {"match": "1234-5678"}
    assert result.error.error.code == "input_guardrail_tripwire_triggered"
    assert result.error.error.message == "The input guardrail 'card' tripped"
    assert recorder.requests == []
    assert result.state.status == "error"


async def test_regex_ignore_case_and_passing_input() -> None:
    spec = agent(input_guardrails=[{"type": "regex", "pattern": "drop table", "ignore_case": True}])
    tripped, _ = await _run_guarded(spec, "DROP TABLE users")
    passed, recorder = await _run_guarded(spec, "select 1")
    assert tripped.names == TRIPPED_INPUT
    assert passed.last.status == "completed" and len(recorder.requests) == 1


@pytest.mark.parametrize(
    ("text", "case_sensitive", "trips"),
    [
        ("my SECRET plan", False, True),
        ("the secretary", False, False),  # whole words only
        ("my SECRET plan", True, False),
        ("a secret.", True, True),
    ],
)
async def test_blocklist_input_guardrail(text: str, case_sensitive: bool, trips: bool) -> None:
    rule = {"type": "blocklist", "words": ["secret", "password"], "case_sensitive": case_sensitive}
    result, _ = await _run_guarded(agent(input_guardrails=[rule]), text)
    assert (result.names == TRIPPED_INPUT) is trips
    if trips:
        assert result.of("GuardrailTripped")[0].output_info == {"words": ["secret"]}
        assert result.of("GuardrailTripped")[0].guardrail == "blocklist"


async def test_max_length_output_guardrail_trips_after_the_answer() -> None:
    spec = agent(output_guardrails=[{"type": "max_length", "max_length": 10}])
    result, recorder = await _run_guarded(spec, "this answer is far too long")

    assert collapse(result.names) == [
        "RunStarted",
        "RunContent",
        "Checkpoint",
        "GuardrailTripped",
        "Checkpoint",
        "RunError",
    ]
    tripped = result.of("GuardrailTripped")[0]
    assert tripped.stage == "output"
    assert tripped.output_info == {"length": 27, "max_length": 10}
    assert result.error.error.code == "output_guardrail_tripwire_triggered"
    assert result.state.content is None
    short, _ = await _run_guarded(spec, "short")
    assert short.last.content == "short"


async def test_output_regex_and_blocklist_guard_the_final_answer_only() -> None:
    spec = agent(
        model="test:tools",
        tools=["calculator"],
        output_guardrails=[{"type": "blocklist", "words": ["tools"]}],
    )
    from app.engine.tools import BUILTIN_TOOLS

    result, _ = await _run_guarded(spec, "hi", tools=BUILTIN_TOOLS)
    assert result.names.count("ToolCallCompleted") == 1  # tools ran, then the answer tripped
    assert result.error.error.code == "output_guardrail_tripwire_triggered"


@pytest.mark.parametrize(
    ("text", "trips"),
    [("Yes!", True), ("  TRUE. ", True), ("trip", True), ("no", False), ("yes, but", False)],
)
async def test_agent_guardrail_with_a_text_classifier(text: str, trips: bool) -> None:
    classifier = agent("classifier", instructions="Answer yes or no.")  # test:echo repeats the text
    spec = agent(input_guardrails=[{"type": "agent", "agent_id": "classifier"}])
    result, recorder = await _run_guarded(spec, text, classifier)

    assert (result.names == TRIPPED_INPUT) is trips
    assert result.names.count("RunStarted") == 1  # the classifier's events are not forwarded
    classifier_request = recorder.requests[0]
    assert classifier_request.messages[0] == {"role": "system", "content": "Answer yes or no."}
    if trips:
        tripped = result.of("GuardrailTripped")[0]
        assert (tripped.guardrail, tripped.guardrail_type) == ("agent:classifier", "agent")
        assert tripped.output_info == {"agent_id": "classifier", "content": text}
    else:
        assert len(recorder.requests) == 2  # the classifier, then the agent itself
        assert result.last.metrics.model_calls == 1


async def test_agent_guardrail_with_structured_output_on_the_answer() -> None:
    verdict = {
        "title": "Verdict",
        "type": "object",
        "properties": {"tripwire_triggered": {"type": "boolean"}, "reason": {"type": "string"}},
        "required": ["tripwire_triggered", "reason"],
        "additionalProperties": False,
    }
    judge_model = ScriptedModel(
        lambda request, i: (
            '{"tripwire_triggered": true, "reason": "rude"}'
            if "idiot" in request.messages[-1]["content"]
            else '{"tripwire_triggered": false, "reason": "fine"}'
        )
    )
    judge = agent("judge", model="script:judge", output_schema=verdict)
    spec = agent(output_guardrails=[{"type": "agent", "agent_id": "judge", "name": "politeness"}])
    models = Models(script=judge_model)

    rude = await run(make_runner(spec, judge, models=models), spec, "you idiot")
    assert rude.error.error.code == "output_guardrail_tripwire_triggered"
    assert rude.of("GuardrailTripped")[0].output_info == {
        "agent_id": "judge",
        "content": {"tripwire_triggered": True, "reason": "rude"},
    }
    polite = await run(make_runner(spec, judge, models=models), spec, "thank you")
    assert polite.last.content == "thank you"
    assert judge_model.requests[-1].messages[-1]["content"] == "thank you"


async def test_a_failing_classifier_fails_the_run() -> None:
    classifier = agent("classifier", model_settings={"fail": "classifier down"})
    spec = agent(input_guardrails=[{"type": "agent", "agent_id": "classifier"}])
    result, _ = await _run_guarded(spec, "hello", classifier)
    assert result.error.error.code == "model_provider_error"
    assert result.error.error.message == "guardrail agent 'classifier' failed: classifier down"
    missing, _ = await _run_guarded(spec, "hello")
    assert missing.error.error.code == "user_error"


async def test_python_guardrails_sync_and_async() -> None:
    registry = GuardrailRegistry()
    seen: list[GuardrailContext] = []

    @registry.guardrail
    def no_shouting(text: str, ctx: GuardrailContext) -> bool:
        seen.append(ctx)
        return text.isupper()

    @registry.guardrail(name="too_many_links")
    async def links(text: str, ctx: GuardrailContext) -> GuardrailResult:
        await asyncio.sleep(0)
        count = text.count("http")
        return GuardrailResult(
            tripwire_triggered=count > 1, output_info={"links": count}, message="spam"
        )

    spec = agent(
        input_guardrails=[{"type": "python", "name": "no_shouting"}],
        output_guardrails=[{"type": "python", "name": "too_many_links"}],
    )
    shouting, _ = await _run_guarded(spec, "HELLO", guardrails=registry)
    assert shouting.names == TRIPPED_INPUT
    assert shouting.of("GuardrailTripped")[0].guardrail == "no_shouting"
    assert (seen[0].stage, seen[0].agent_id, seen[0].run_id, seen[0].user_id) == (
        "input",
        "a",
        "run-1",
        "user-1",
    )

    spam, _ = await _run_guarded(spec, "see http://a and http://b", guardrails=registry)
    tripped = spam.of("GuardrailTripped")[0]
    assert (tripped.stage, tripped.output_info, tripped.message) == ("output", {"links": 2}, "spam")
    assert spam.error.error.code == "output_guardrail_tripwire_triggered"

    fine, _ = await _run_guarded(spec, "see http://a", guardrails=registry)
    assert fine.last.status == "completed"


async def test_an_unregistered_python_guardrail_is_a_user_error() -> None:
    spec = agent(input_guardrails=[{"type": "python", "name": "nobody"}])
    result, _ = await _run_guarded(spec, "hi")
    assert result.error.error.code == "user_error"
    assert "nobody" in result.error.error.message


def test_python_guardrail_results_may_be_dicts_or_objects() -> None:
    registry = GuardrailRegistry()
    registry.register(lambda text, ctx: {"tripwire_triggered": True, "output_info": 1}, name="d")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(lambda text, ctx: False, name="d")
    assert [g.name for g in registry.list()] == ["d"]


@pytest.mark.parametrize(
    ("content", "trips"),
    [
        ("true", True),
        ("Yes.", True),
        ("**TRIP**", True),
        ("y e s", True),
        ("no", False),
        ("true story", False),
        ("", False),
        ({"tripwire_triggered": True}, True),
        ({"tripwire_triggered": "true"}, False),
        (None, False),
    ],
)
def test_classifier_answers(content: Any, trips: bool) -> None:
    assert classifier_trips(content) is trips
