"""Structured output: schema sent to the model, validation, re-asking, giving up."""

from __future__ import annotations

from typing import Any

import pytest

from app.engine.models.test import TestModel
from app.engine.structured import (
    OutputValidationError,
    UnusableSchemaError,
    allows_strict,
    output_schema,
    parse_output,
    schema_errors,
)

from .helpers import Models, Recorder, ScriptedModel, agent, make_runner, run

WEATHER = {
    "title": "Weather Report",
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp": {"type": "integer"}},
    "required": ["city", "temp"],
    "additionalProperties": False,
}


async def test_valid_structured_output_from_the_test_model() -> None:
    recorder = Recorder(TestModel())
    spec = agent(output_schema=WEATHER)
    result = await run(make_runner(spec, models=Models(test=recorder)), spec)

    sent = recorder.requests[0].output_schema
    assert sent is not None
    assert (sent.name, sent.strict, sent.schema) == ("Weather_Report", True, WEATHER)
    assert result.of("RunContentCompleted")[0].content == {"city": "a", "temp": 0}
    assert result.last.content == {"city": "a", "temp": 0}
    assert result.last.content_type == "Weather Report"
    assert "".join(e.content for e in result.of("RunContent")) == '{"city": "a", "temp": 0}'


async def test_per_run_output_schema_overrides_the_agent() -> None:
    recorder = Recorder(TestModel())
    spec = agent(output_schema=WEATHER)
    override = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    result = await run(
        make_runner(spec, models=Models(test=recorder)), spec, output_schema=override
    )

    sent = recorder.requests[0].output_schema
    assert sent is not None and (sent.name, sent.strict) == ("output", False)
    assert (result.last.content, result.last.content_type) == ({"ok": False}, "output")


async def test_invalid_output_is_retried_with_the_error_then_succeeds() -> None:
    script = ScriptedModel(
        ["Sure! Here it is.", '{"city": 1, "temp": 3}', '{"city": "Oslo", "temp": -2}']
    )
    spec = agent(model="script:m", output_schema=WEATHER)
    result = await run(make_runner(spec, models=Models(script=script)), spec)

    assert result.last.status == "completed"
    assert result.last.content == {"city": "Oslo", "temp": -2}
    assert result.last.metrics.model_calls == 3
    assert result.state.output_retries == 2
    first_retry = script.requests[1].messages[-1]
    assert first_retry["role"] == "user"
    assert (
        "does not match the required output schema: the answer is not valid JSON"
        in first_retry["content"]
    )
    second_retry = script.requests[2].messages[-1]["content"]
    assert "at city: 1 is not of type 'string'" in second_retry
    # each retry is a model turn followed by a checkpoint of the re-ask
    assert result.names.count("RunContentCompleted") == 1
    assert result.names.count("Checkpoint") == 6


async def test_retries_exhausted_is_a_model_behavior_error() -> None:
    script = ScriptedModel(lambda request, index: f"not json {index}")
    spec = agent(model="script:m", output_schema=WEATHER)
    result = await run(make_runner(spec, models=Models(script=script)), spec)

    assert result.error.error.code == "model_behavior_error"
    assert result.error.error.message.startswith("No valid structured output after 3 attempt(s)")
    assert len(script.requests) == 3
    assert "RunContentCompleted" not in result.names


async def test_max_output_retries_is_configurable() -> None:
    script = ScriptedModel(lambda request, index: "[]")
    spec = agent(model="script:m", output_schema=WEATHER)
    runner = make_runner(spec, models=Models(script=script), max_output_retries=0)
    result = await run(runner, spec)
    assert result.error.error.code == "model_behavior_error"
    assert "at (root): [] is not of type 'object'" in result.error.error.message
    assert len(script.requests) == 1


def test_fenced_json_is_accepted() -> None:
    assert parse_output('```json\n{"city": "x", "temp": 1}\n```', WEATHER) == {
        "city": "x",
        "temp": 1,
    }
    with pytest.raises(OutputValidationError, match="'temp' is a required property"):
        parse_output('{"city": "x"}', WEATHER)


NESTED_STRICT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "n": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                },
                "required": ["name", "n"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["items"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("schema", "strict"),
    [
        (WEATHER, True),
        (NESTED_STRICT, True),
        ({**WEATHER, "required": ["city"]}, False),  # an optional property
        ({k: v for k, v in WEATHER.items() if k != "additionalProperties"}, False),
        ({"type": "array", "items": {"type": "string"}}, False),  # the root must be an object
        ({**WEATHER, "properties": {"city": {"oneOf": [{"type": "string"}]}, "temp": {}}}, False),
        (
            {
                **NESTED_STRICT,
                "properties": {
                    "items": {"type": "array", "items": {"type": "object", "properties": {}}}
                },
            },
            False,  # a nested object that is not closed
        ),
    ],
)
def test_strict_mode_only_when_the_schema_allows_it(schema: dict[str, Any], strict: bool) -> None:
    assert allows_strict(schema) is strict
    assert output_schema(schema).strict is strict


def test_schema_errors_name_refs_that_do_not_resolve() -> None:
    assert schema_errors({"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}) == [
        "$ref '#/$defs/A' does not resolve within the schema"
    ]
    assert schema_errors({"$ref": "https://example.invalid/s.json"}) == [
        "$ref 'https://example.invalid/s.json' does not resolve within the schema"
    ]
    assert schema_errors({"$ref": "#/$defs/A", "$defs": {"A": {"type": "string"}}}) == []
    assert schema_errors({"type": 7})  # the metaschema still applies
    assert schema_errors([]) == ["must be a JSON Schema object"]


def test_an_output_schema_that_cannot_resolve_is_not_the_answers_fault() -> None:
    with pytest.raises(UnusableSchemaError):
        parse_output('{"a": 1}', {"properties": {"a": {"$ref": "#/nowhere"}}})
