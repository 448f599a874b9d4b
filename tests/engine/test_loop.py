"""The loop end to end with the test model: inputs, events, metrics, errors."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest

from app.engine.context import Checkpoint
from app.engine.errors import InputError
from app.engine.events import RunCompleted
from app.engine.models.base import ContentDelta, ModelRequest, ReasoningDelta, UsageDelta
from app.engine.models.test import TestModel

from .helpers import (
    Models,
    Recorder,
    ScriptedModel,
    agent,
    collect,
    make_runner,
    new_state,
    run,
)


async def test_string_input_streams_word_by_word_and_completes() -> None:
    spec = agent(name="Echo")
    result = await run(make_runner(spec), spec, "hello big world")

    assert result.names == [
        "RunStarted",
        "RunContent",
        "RunContent",
        "RunContent",
        "Checkpoint",  # the model turn is stored before anything announces it
        "Checkpoint",  # the completed run
        "RunContentCompleted",
        "RunCompleted",
    ]
    assert [e.content for e in result.of("RunContent")] == ["hello ", "big ", "world"]
    # Only the last checkpoint is final: nothing but the run's end follows it, so the
    # service may store it with the end (one write less per run).
    checkpoints = [item for item in result.items if isinstance(item, Checkpoint)]
    assert [checkpoint.final for checkpoint in checkpoints] == [False, True]
    started = result.events[0]
    assert (started.agent_name, started.agent_version, started.model) == ("Echo", 1, "test:echo")
    completed = result.last
    assert isinstance(completed, RunCompleted)
    assert completed.status == "completed"
    assert completed.content == "hello big world"
    assert completed.content_type == "str"
    assert completed.agent_id == completed.last_agent_id == "a"
    assert completed.messages == [
        {"role": "user", "content": "hello big world"},
        {"role": "assistant", "content": "hello big world"},
    ]
    assert result.state.status == "completed"
    # what the service would have persisted at each checkpoint
    turn, final = result.snapshots
    assert turn["messages"][-1] == {"role": "assistant", "content": "hello big world"}
    assert (turn["status"], turn["turns"]) == ("running", 1)
    assert (final["status"], final["content"]) == ("completed", "hello big world")


async def test_every_event_carries_run_session_and_agent() -> None:
    spec = agent()
    result = await run(make_runner(spec), spec, "x y")
    for event in result.events:
        assert (event.run_id, event.session_id, event.agent_id) == ("run-1", "sess-1", "a")
        assert event.created_at.endswith("Z")


async def test_metrics_count_tokens_calls_and_time() -> None:
    spec = agent()
    result = await run(make_runner(spec), spec, "one two three")
    metrics = result.last.metrics
    assert (metrics.input_tokens, metrics.output_tokens, metrics.total_tokens) == (3, 3, 6)
    assert (metrics.model_calls, metrics.tool_calls) == (1, 0)
    assert metrics.time_to_first_token is not None and metrics.time_to_first_token >= 0
    assert metrics.duration >= metrics.time_to_first_token
    assert [c.model for c in metrics.calls] == ["test:echo"]
    assert metrics.calls[0].input_tokens == 3


async def test_output_metrics_are_a_copy_of_the_state() -> None:
    spec = agent()
    result = await run(make_runner(spec), spec, "one two")
    output = result.state.to_output()
    result.state.metrics.calls[0].output_tokens += 100
    result.state.metrics.output_tokens += 100
    assert output.metrics.output_tokens == result.last.metrics.output_tokens == 2
    assert output.metrics.calls[0].output_tokens == 2
    assert output.metrics is not result.state.metrics


async def test_message_list_input_answers_the_last_user_message() -> None:
    spec = agent()
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": [{"type": "text", "text": "second one"}]},
    ]
    result = await run(make_runner(spec), spec, messages)
    assert result.last.content == "second one"
    assert result.state.new_messages()[:3] == messages


async def test_bad_message_list_lists_every_problem() -> None:
    spec = agent()
    runner = make_runner(spec)
    bad = [{"role": "robot", "content": "x"}, "text", {"role": "user", "content": 5, "name": "n"}]
    with pytest.raises(InputError) as caught:
        new_state(runner, spec, bad)
    assert caught.value.errors == [
        "input[0].role: must be one of assistant, developer, system, tool, user",
        "input[1]: must be an object with 'role' and 'content'",
        "input[2]: unexpected field(s) name",
        "input[2].content: must be a string or a list of content parts",
    ]
    with pytest.raises(InputError, match="empty"):
        new_state(runner, spec, [])


def _call(call_id: str, name: str = "lookup") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


async def test_a_conversation_may_carry_earlier_tool_calls_and_their_results() -> None:
    spec = agent(model="test:tools", tools=[{"type": "client", "name": "lookup"}])
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": None, "tool_calls": [_call("c1"), _call("c2")]},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]
    result = await run(make_runner(spec), spec, messages)
    # The model sees the calls answered: it answers instead of calling again.
    assert result.last.content == "Called 2 tools."
    assert result.state.new_messages()[:4] == messages


async def test_tool_calls_in_a_conversation_must_each_be_answered_once() -> None:
    spec = agent()
    runner = make_runner(spec)
    bad = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [_call("c1"), _call("c2"), {"id": 3}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        {"role": "tool", "tool_call_id": "c1", "content": "again"},
        {"role": "tool", "tool_call_id": "zz", "content": "who?", "name": "n"},
    ]
    with pytest.raises(InputError) as caught:
        new_state(runner, spec, bad)
    assert caught.value.errors == [
        "input[1].tool_calls[2]: must be {'id', 'type': 'function', "
        "'function': {'name', 'arguments'}}",
        "input[3].tool_call_id: 'c1' is answered twice",
        "input[4]: unexpected field(s) name",
        "input[4].tool_call_id: 'zz' is not an earlier tool call",
        "input[1].tool_calls[1]: no tool result for call 'c2'",
    ]


CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


async def test_object_input_is_validated_and_sent_as_json() -> None:
    spec = agent(input_schema=CITY_SCHEMA)
    result = await run(make_runner(spec), spec, {"city": "Paris"})
    assert result.last.content == '{"city":"Paris"}'


async def test_object_input_rejected_by_input_schema() -> None:
    spec = agent(input_schema=CITY_SCHEMA)
    with pytest.raises(InputError) as caught:
        new_state(make_runner(spec), spec, {"town": 1})
    assert caught.value.errors == [
        "input: 'city' is a required property",
        "input: Additional properties are not allowed ('town' was unexpected)",
    ]


async def test_a_stored_input_schema_that_cannot_resolve_is_an_input_error() -> None:
    """A definition stored before refs were checked fails the run's creation
    with a reason (422), not with the validator's exception (500)."""
    spec = agent(input_schema={"type": "object", "properties": {"a": {"$ref": "#/defs/x"}}})
    with pytest.raises(InputError) as caught:
        new_state(make_runner(spec), spec, {"a": 1})
    assert len(caught.value.errors) == 1
    assert "the agent's schema cannot be used" in caught.value.errors[0]


async def test_images_become_image_url_parts_of_the_user_message() -> None:
    model = ScriptedModel(["I see two images."])
    spec = agent(model="script:vision")
    runner = make_runner(spec, models=Models(script=model))
    png = base64.b64encode(b"\x89PNG fake").decode()
    images = [{"url": "https://example.com/cat.png"}, {"content": png, "mime_type": "image/png"}]
    result = await run(runner, spec, "What is this?", images=images)

    assert result.last.content == "I see two images."
    assert model.requests[0].messages[-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        ],
    }


def test_bad_images_are_input_errors() -> None:
    spec = agent()
    images: list[Any] = [
        {"url": "ftp://example.com/x.png"},
        {"content": "not base64!", "mime_type": "image/png"},
        {"content": "aGk=", "mime_type": "text/plain"},
        {"path": "/etc/passwd"},
    ]
    with pytest.raises(InputError) as caught:
        new_state(make_runner(spec), spec, "look", images=images)
    assert [e.split(":")[0] for e in caught.value.errors] == [
        "images[0].url",
        "images[1].content",
        "images[2].mime_type",
        "images[3]",
    ]


async def test_history_goes_to_the_model_but_not_into_new_messages() -> None:
    recorder = Recorder(TestModel())
    spec = agent(instructions=["Be brief.", "Be kind."])
    runner = make_runner(spec, models=Models(test=recorder))
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "yes"}]
    result = await run(runner, spec, "now", history=history)

    assert recorder.requests[0].messages == [
        {"role": "system", "content": "Be brief.\nBe kind."},
        *history,
        {"role": "user", "content": "now"},
    ]
    assert result.state.history_length == 2
    assert [m["content"] for m in result.state.new_messages()] == ["now", "now"]
    assert result.last.messages == result.state.new_messages()


async def test_session_state_and_settings_reach_the_model() -> None:
    recorder = Recorder(TestModel())
    spec = agent(
        instructions="Use the state.",
        add_session_state_to_context=True,
        model_settings={"temperature": 0.1, "max_tokens": 50},
    )
    runner = make_runner(spec, models=Models(test=recorder))
    await run(
        runner,
        spec,
        "hi",
        session_state={"cart": ["apple"], "b": 1},
        model_settings={"temperature": 0.7},
    )
    request = recorder.requests[0]
    assert request.messages[0] == {
        "role": "system",
        "content": 'Use the state.\n\n<session_state>\n{"b":1,"cart":["apple"]}\n</session_state>',
    }
    assert request.settings == {"temperature": 0.7, "max_tokens": 50}
    assert request.model == "echo"


async def test_model_override_switches_the_model() -> None:
    model = ScriptedModel(["from the script"])
    spec = agent()
    runner = make_runner(spec, models=Models(script=model))
    result = await run(runner, spec, "hi", model="script:other")
    assert result.last.content == "from the script"
    assert model.requests[0].model == "other"
    assert result.last.model == "script:other"


def test_bad_overrides_are_input_errors() -> None:
    spec = agent()
    with pytest.raises(InputError) as caught:
        new_state(
            make_runner(spec),
            spec,
            "hi",
            model="nope:model",
            max_turns=0,
            output_schema={"type": "wat"},
        )
    assert caught.value.errors[0] == "run_config.model: unknown model provider 'nope'"
    assert caught.value.errors[1] == "run_config.max_turns: must be at least 1"
    assert caught.value.errors[2].startswith("output_schema: ")


async def test_reasoning_streams_as_reasoning_events() -> None:
    model = ScriptedModel(
        [
            [
                ReasoningDelta("Let me "),
                ReasoningDelta("think."),
                ContentDelta("Done."),
                UsageDelta(2, 3),
            ]
        ]
    )
    spec = agent(model="script:r1")
    result = await run(make_runner(spec, models=Models(script=model)), spec)
    assert result.names == [
        "RunStarted",
        "ReasoningStarted",
        "ReasoningStep",
        "ReasoningStep",
        "ReasoningCompleted",
        "RunContent",
        "Checkpoint",
        "Checkpoint",
        "RunContentCompleted",
        "RunCompleted",
    ]
    assert result.of("ReasoningCompleted")[0].reasoning_content == "Let me think."
    assert result.last.reasoning_content == "Let me think."
    assert result.state.messages[-1]["reasoning_content"] == "Let me think."
    assert result.last.metrics.output_tokens == 3


async def test_model_provider_error_ends_with_one_run_error() -> None:
    spec = agent(model_settings={"fail": "upstream said 503"})
    result = await run(make_runner(spec), spec)
    assert result.names == ["RunStarted", "Checkpoint", "RunError"]
    assert result.error.error.code == "model_provider_error"
    assert result.error.error.message == "upstream said 503"
    assert result.error.content == "upstream said 503"
    assert result.state.status == "error"
    assert result.state.to_output().error == result.error.error


async def test_unknown_test_model_is_a_provider_error() -> None:
    spec = agent(model="test:nope")
    result = await run(make_runner(spec), spec)
    assert result.error.error.code == "model_provider_error"


class _Broken:
    async def stream(self, request: ModelRequest) -> Any:
        raise RuntimeError("secret internals at /srv/app")
        yield  # pragma: no cover

    async def aclose(self) -> None:
        return None


async def test_unexpected_exception_is_a_generic_internal_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = agent(model="broken:x")
    runner = make_runner(spec, models=Models(broken=_Broken()))
    with caplog.at_level(logging.ERROR, logger="app.engine.loop"):
        result = await run(runner, spec)
    assert result.names == ["RunStarted", "Checkpoint", "RunError"]
    assert result.error.error.code == "internal_error"
    assert "secret" not in result.error.error.message
    assert "secret internals" in caplog.text  # the traceback is logged


async def test_max_turns_exceeded() -> None:
    spec = agent(model="test:tools", tools=["calculator"], max_turns=1)
    result = await run(make_runner(spec, tools=_calculator()), spec)
    assert result.names == [
        "RunStarted",
        "Checkpoint",
        "ToolCallStarted",
        "Checkpoint",
        "ToolCallCompleted",
        "Checkpoint",
        "RunError",
    ]
    assert result.error.error.code == "max_turns_exceeded"
    assert result.state.turns == 1


async def test_max_turns_run_override_wins() -> None:
    spec = agent(model="test:tools", tools=["calculator"], max_turns=5)
    runner = make_runner(spec, tools=_calculator())
    assert (await run(runner, spec)).last.status == "completed"
    assert (await run(runner, spec, max_turns=1)).error.error.code == "max_turns_exceeded"


async def test_a_finished_state_cannot_be_streamed_again() -> None:
    spec = agent()
    runner = make_runner(spec)
    result = await run(runner, spec)
    with pytest.raises(ValueError, match="already completed"):
        await collect(runner, result.state)


async def test_missing_tool_or_agent_is_a_user_error() -> None:
    spec = agent(tools=["not_registered"])
    result = await run(make_runner(spec), spec)
    assert result.names == ["RunStarted", "Checkpoint", "RunError"]
    assert result.error.error.code == "user_error"
    assert "not_registered" in result.error.error.message


def _calculator() -> list[Any]:
    from app.engine.tools import BUILTIN_TOOLS

    return BUILTIN_TOOLS
