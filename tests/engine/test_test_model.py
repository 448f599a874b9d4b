"""TestModel: deterministic answers, tool calls from schemas, structured output."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine.models.base import (
    ContentDelta,
    FinishDelta,
    ModelDelta,
    ModelProviderError,
    ModelRequest,
    OutputSchema,
    ToolCallDelta,
    ToolDefinition,
    UsageDelta,
)
from app.engine.models.test import TEST_MODELS, TestModel, sample


async def _deltas(request: ModelRequest) -> list[ModelDelta]:
    return [delta async for delta in TestModel().stream(request)]


async def test_echo_streams_the_last_user_message_word_by_word() -> None:
    messages = [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "old"},
        {"role": "assistant", "content": "x"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "hello  there"}, {"type": "image_url"}],
        },
    ]
    deltas = await _deltas(ModelRequest(model="echo", messages=messages))
    assert deltas == [
        ContentDelta("hello  "),
        ContentDelta("there"),
        UsageDelta(input_tokens=6, output_tokens=2),
        FinishDelta("stop"),
    ]


async def test_echo_answers_in_one_piece_when_not_streamed() -> None:
    messages = [{"role": "user", "content": "one two  three"}]
    deltas = await _deltas(ModelRequest(model="echo", messages=messages, stream=False))
    assert deltas == [
        ContentDelta("one two  three"),
        UsageDelta(input_tokens=3, output_tokens=3),
        FinishDelta("stop"),
    ]
    empty = await _deltas(
        ModelRequest(model="echo", messages=[{"role": "user", "content": ""}], stream=False)
    )
    assert empty == [UsageDelta(input_tokens=0, output_tokens=0), FinishDelta("stop")]


async def test_tools_calls_every_tool_once_then_answers() -> None:
    tools = [
        ToolDefinition(
            "book",
            "",
            {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "nights": {"type": "integer", "minimum": 2},
                    "kind": {"enum": ["hotel", "hostel"]},
                    "pets": {"type": "boolean"},
                    "note": {"type": "string"},
                },
                "required": ["city", "nights", "kind", "pets"],
            },
        ),
        ToolDefinition("ping", "", {"type": "object", "properties": {}}),
    ]
    first = await _deltas(
        ModelRequest(model="tools", messages=[{"role": "user", "content": "go"}], tools=tools)
    )
    calls = [d for d in first if isinstance(d, ToolCallDelta)]
    assert [(c.index, c.id, c.name) for c in calls if c.id] == [
        (0, "call_0_0", "book"),
        (1, "call_0_1", "ping"),
    ]
    arguments = "".join(c.arguments for c in calls if c.index == 0)
    assert arguments == '{"city":"a","nights":2,"kind":"hotel","pets":false}'
    assert "".join(c.arguments for c in calls if c.index == 1) == "{}"
    assert first[-1] == FinishDelta("tool_calls")
    assert not any(isinstance(d, ContentDelta) for d in first)

    answered = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "tool_call_id": "call_0_0", "content": "ok"},
        {"role": "tool", "tool_call_id": "call_0_1", "content": "ok"},
    ]
    second = await _deltas(ModelRequest(model="tools", messages=answered, tools=tools))
    assert "".join(d.text for d in second if isinstance(d, ContentDelta)) == "Called 2 tools."
    assert second[-1] == FinishDelta("stop")


async def test_structured_output_for_both_models() -> None:
    schema = {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
        "required": ["tags"],
    }
    for name in sorted(TEST_MODELS):
        request = ModelRequest(
            model=name,
            messages=[{"role": "user", "content": "x"}],
            output_schema=OutputSchema("o", schema),
        )
        text = "".join(d.text for d in await _deltas(request) if isinstance(d, ContentDelta))
        assert text == '{"tags": ["a"]}'


async def test_failures_and_unknown_models() -> None:
    with pytest.raises(ModelProviderError, match="unknown test model 'gpt'"):
        await _deltas(ModelRequest(model="gpt", messages=[]))
    with pytest.raises(ModelProviderError, match="rate limited"):
        await _deltas(ModelRequest(model="echo", messages=[], settings={"fail": "rate limited"}))
    with pytest.raises(ModelProviderError, match="test model failure"):
        await _deltas(ModelRequest(model="echo", messages=[], settings={"fail": True}))


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "string"}, "a"),
        ({"type": "string", "minLength": 3}, "aaa"),
        ({"type": "integer"}, 0),
        ({"type": "integer", "exclusiveMinimum": 5}, 6),
        ({"type": "number", "maximum": -1}, -1),
        ({"type": "boolean"}, False),
        ({"type": "null"}, None),
        ({"type": ["null", "integer"]}, 0),
        ({"enum": ["x", "y"]}, "x"),
        ({"const": 7}, 7),
        ({"anyOf": [{"type": "null"}, {"type": "string"}]}, "a"),
        ({"type": "array", "items": {"type": "integer"}}, []),
        (
            {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}},
            {"a": "a", "b": 0},  # no required fields: all of them
        ),
        (
            {
                "type": "object",
                "properties": {"p": {"$ref": "#/$defs/P"}},
                "required": ["p"],
                "$defs": {"P": {"type": "object", "properties": {"n": {"type": "integer"}}}},
            },
            {"p": {"n": 0}},
        ),
    ],
)
def test_sample_values_match_their_schema(schema: dict[str, Any], value: Any) -> None:
    assert sample(schema) == value
