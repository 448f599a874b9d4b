"""Parser and output models: who answers what, and the whole event sequences."""

from __future__ import annotations

from app.engine.models.test import TestModel

from .helpers import Models, Recorder, ScriptedModel, agent, collapse, make_runner, run

CITY = {
    "title": "City",
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


async def test_the_output_model_writes_the_answer() -> None:
    recorder = Recorder(TestModel())
    spec = agent(output_model="test:echo", output_model_prompt="Rewrite it.")
    runner = make_runner(spec, models=Models(test=recorder))
    result = await run(runner, spec, "hello world")

    assert collapse(collapse(result.names), "RunIntermediateContent") == [
        "RunStarted",
        "RunIntermediateContent",
        "Checkpoint",
        "OutputModelResponseStarted",
        "RunContent",
        "OutputModelResponseCompleted",
        "Checkpoint",
        "RunContentCompleted",
        "RunCompleted",
    ]
    assert result.of("OutputModelResponseCompleted")[0].content == "hello world"
    assert "".join(e.content for e in result.of("RunContent")) == "hello world"
    assert [r.purpose for r in recorder.requests] == ["agent", "output"]
    output = recorder.requests[1]
    assert output.messages[0] == {"role": "system", "content": "Rewrite it."}
    assert output.messages[-1] == {"role": "assistant", "content": "hello world"}
    assert result.last.metrics.model_calls == 2


async def test_the_output_model_answers_as_the_main_model_would_after_tools() -> None:
    def now() -> str:
        """The time."""
        return "noon"

    spec = agent(model="test:tools", tools=["now"], output_model="test:tools")
    result = await run(make_runner(spec, tools=[now]), spec, "time?")
    assert result.last.content == "Called 1 tools."
    assert "".join(e.content for e in result.of("RunIntermediateContent")) == "Called 1 tools."


async def test_the_parser_model_turns_a_free_answer_into_the_schema() -> None:
    main = ScriptedModel(["It is Oslo, I think."])
    recorder = Recorder(TestModel())
    spec = agent(model="scripted:m", output_schema=CITY, parser_model="test:echo")
    runner = make_runner(spec, models=Models(test=recorder, scripted=main))
    result = await run(runner, spec, "Which city?")

    assert collapse(result.names) == [
        "RunStarted",
        "RunContent",
        "Checkpoint",
        "ParserModelResponseStarted",
        "ParserModelResponseCompleted",
        "Checkpoint",
        "RunContentCompleted",
        "RunCompleted",
    ]
    assert main.requests[0].output_schema is None  # the main model answers freely
    parser = recorder.requests[0]
    assert parser.purpose == "parser"
    assert parser.output_schema is not None and parser.output_schema.schema == CITY
    assert parser.messages[-1] == {"role": "user", "content": "It is Oslo, I think."}
    completed = result.of("ParserModelResponseCompleted")[0]
    assert (completed.content, completed.content_type) == ({"city": "a"}, "City")
    assert (result.last.content, result.last.content_type) == ({"city": "a"}, "City")


async def test_a_parser_answer_off_the_schema_is_a_model_behavior_error() -> None:
    main = ScriptedModel(lambda request, _: "not json")
    spec = agent(model="scripted:m", output_schema=CITY, parser_model="scripted:p")
    result = await run(make_runner(spec, models=Models(scripted=main)), spec, "x")
    assert result.error.error.code == "model_behavior_error"
