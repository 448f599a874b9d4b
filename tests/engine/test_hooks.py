"""Pre- and post-hooks: what they see, replace and reject, and their events."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from app.engine.hooks import BUILTIN_HOOKS, HookRegistry, HookRejected, redact
from app.engine.models.test import TestModel
from app.engine.tools import RunContext

from .helpers import Models, Recorder, agent, collapse, make_runner, run

seen: list[tuple[str, Any, RunContext]] = []


def shout(data: Any, ctx: RunContext) -> Any:
    seen.append(("shout", data, ctx))
    return data.upper() if isinstance(data, str) else None


async def keep(data: Any, ctx: RunContext) -> None:
    seen.append(("keep", data, ctx))


def refuse(data: Any, ctx: RunContext) -> None:
    raise HookRejected("no thanks")


def broken(data: Any, ctx: RunContext) -> None:
    raise ValueError("secret detail")


def bad_answer(data: Any, ctx: RunContext) -> Any:
    return 42


def registry() -> HookRegistry:
    hooks = HookRegistry(BUILTIN_HOOKS)
    for function in (shout, keep, refuse, broken, bad_answer):
        hooks.register(function)
    return hooks


async def _run(spec: Any, text: Any = "hi", **options: Any) -> Any:
    seen.clear()
    recorder = Recorder(TestModel())
    runner = make_runner(spec, models=Models(test=recorder), hooks=registry())
    return await run(runner, spec, text, **options), recorder


async def test_pre_hooks_replace_the_input_in_order_before_the_model() -> None:
    spec = agent(pre_hooks=["keep", "shout", "keep"])
    result, recorder = await _run(spec, "hello there")

    assert collapse(result.names) == [
        "RunStarted",
        "PreHookStarted",
        "PreHookCompleted",
        "PreHookStarted",
        "Checkpoint",
        "PreHookCompleted",
        "PreHookStarted",
        "PreHookCompleted",
        "RunContent",
        "Checkpoint",
        "Checkpoint",
        "RunContentCompleted",
        "RunCompleted",
    ]
    assert [e.hook_name for e in result.of("PreHookStarted")] == ["keep", "shout", "keep"]
    assert [(name, data) for name, data, _ in seen] == [
        ("keep", "hello there"),
        ("shout", "hello there"),
        ("keep", "HELLO THERE"),
    ]
    ctx = seen[0][2]
    assert (ctx.run_id, ctx.session_id, ctx.user_id, ctx.agent_id) == (
        "run-1",
        "sess-1",
        "user-1",
        "a",
    )
    assert ctx.idempotency_key == "run-1"
    assert recorder.requests[0].messages[-1] == {"role": "user", "content": "HELLO THERE"}
    assert result.last.content == "HELLO THERE"
    assert result.last.messages[0] == {"role": "user", "content": "HELLO THERE"}


async def test_a_pre_hook_sees_a_message_list_and_runs_before_input_guardrails() -> None:
    spec = agent(
        pre_hooks=["pii_redaction"],
        input_guardrails=[{"type": "regex", "pattern": "@"}],
    )
    messages = [
        {"role": "user", "content": "mail a@b.example"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "call +1 415 555 0100"}]},
    ]
    result, recorder = await _run(spec, messages)

    assert result.last.status == "completed"  # the guardrail saw the redacted text
    sent = recorder.requests[0].messages
    assert sent[0] == {"role": "user", "content": "mail [EMAIL]"}
    assert sent[2] == {"role": "user", "content": [{"type": "text", "text": "call [PHONE]"}]}


async def test_post_hooks_replace_the_output_before_it_is_stored() -> None:
    spec = agent(post_hooks=["shout"])
    result, _ = await _run(spec, "quiet answer")

    assert collapse(result.names) == [
        "RunStarted",
        "RunContent",
        "Checkpoint",
        "PostHookStarted",
        "Checkpoint",
        "PostHookCompleted",
        "Checkpoint",
        "RunContentCompleted",
        "RunCompleted",
    ]
    assert result.of("PostHookCompleted")[0].hook_name == "shout"
    assert result.last.content == "QUIET ANSWER"
    assert result.last.messages[-1]["content"] == "QUIET ANSWER"
    assert seen[0][1] == "quiet answer"


async def test_a_post_hook_sees_structured_output() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    result, _ = await _run(agent(post_hooks=["keep"], output_schema=schema))
    assert seen[0][1] == {"n": 0}
    assert result.last.content == {"n": 0}


@pytest.mark.parametrize("stage", ["pre_hooks", "post_hooks"])
async def test_a_rejection_ends_the_run_with_hook_rejected(stage: str) -> None:
    result, recorder = await _run(agent(**{stage: ["refuse"]}))
    assert result.error.error.code == "hook_rejected"
    assert result.error.error.message == "no thanks"
    assert result.state.status == "error"
    assert len(recorder.requests) == (0 if stage == "pre_hooks" else 1)
    kind = "PreHook" if stage == "pre_hooks" else "PostHook"
    assert f"{kind}Completed" not in result.names


@pytest.mark.parametrize("name", ["broken", "bad_answer"])
async def test_a_bug_in_a_hook_is_an_internal_error_logged_not_answered(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        result, recorder = await _run(agent(pre_hooks=[name]))
    assert result.error.error.code == "internal_error"
    assert "secret detail" not in result.error.error.message
    assert recorder.requests == []
    assert any(name in record.getMessage() for record in caplog.records)
    if name == "broken":
        assert "secret detail" in caplog.text


async def test_no_hooks_no_hook_events() -> None:
    result, _ = await _run(agent())
    assert not [n for n in result.names if "Hook" in n]


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("write to jane.doe+x@mail.example.com now", "write to [EMAIL] now"),
        ("card 4111 1111 1111 1111 ok", "card [CARD] ok"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("phone +49 30 1234567", "phone [PHONE]"),
        ("phone (415) 555-0100.", "phone [PHONE]."),
        ("order 12345 of 2024", "order 12345 of 2024"),
        ("not a card 1234 5678 9012 3456", "not a card 1234 5678 9012 3456"),
    ],
)
def test_pii_redaction(text: str, redacted: str) -> None:
    assert redact(text) == redacted
