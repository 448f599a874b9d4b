"""Models that shape the final answer (Agno's `parser_model` and `output_model`).

The output model writes the answer the user gets after the main model's last
turn, streamed as `RunContent`, from the same conversation. The parser model
turns an answer into the output schema. Each is one model call, framed by its
Started / Completed events; its metrics count with the run's.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

from app.engine.auxiliary import Answer, ask, relay
from app.engine.context import RunScope, auxiliary_model, system_message
from app.engine.errors import RunFailure
from app.engine.events import (
    OutputModelResponseCompleted,
    OutputModelResponseStarted,
    ParserModelResponseCompleted,
    ParserModelResponseStarted,
    RunContent,
    RunEvent,
)
from app.engine.models.base import Message, ModelClient, ModelRequest
from app.engine.spec import ModelRef
from app.engine.structured import (
    OutputValidationError,
    content_type,
    output_schema,
    parse_output,
)

PARSER_PROMPT = (
    "Convert the answer you are given into a JSON object that matches the required "
    "output schema. Keep its content; add nothing it does not say."
)


def _model(
    scope: RunScope, ref: str | ModelRef, client: Callable[[str], ModelClient], role: str
) -> tuple[ModelClient, str, dict[str, Any], str]:
    try:
        provider, name, settings = auxiliary_model(ref, scope.spec, scope.state)
        return client(provider), name, settings, f"{provider}:{name}"
    except (KeyError, ValueError):
        raise RunFailure("user_error", f"no model provider for the {role} model") from None


async def write_answer(
    scope: RunScope,
    client: Callable[[str], ModelClient],
    schema: dict[str, Any] | None,
    answer: Answer,
) -> AsyncGenerator[RunEvent, None]:
    """The output model writes the answer, streamed as RunContent, into `answer`."""
    spec, state = scope.spec, scope.state
    assert spec.output_model is not None
    model, name, settings, qualified = _model(scope, spec.output_model, client, "output")
    system = (
        {"role": "system", "content": spec.output_model_prompt}
        if spec.output_model_prompt
        else system_message(spec, state)
    )
    messages: list[Message] = ([system] if system else []) + [dict(m) for m in state.messages]
    request = ModelRequest(
        model=name,
        messages=messages,
        output_schema=output_schema(schema)
        if schema is not None and not spec.parser_model
        else None,
        settings=settings,
        stream=state.streaming,
        purpose="output",
    )
    yield scope.event(OutputModelResponseStarted)
    async for text in relay(state, model, request, qualified, answer):
        yield scope.event(RunContent, content=text)
    yield scope.event(OutputModelResponseCompleted, content=answer.text)


async def parse_answer(
    scope: RunScope,
    client: Callable[[str], ModelClient],
    schema: dict[str, Any],
    text: str,
    parsed: list[Any],
) -> AsyncGenerator[RunEvent, None]:
    """The parser model turns `text` into the schema; the object goes into `parsed`.
    Raises RunFailure (`model_behavior_error`) when it does not match."""
    spec, state = scope.spec, scope.state
    assert spec.parser_model is not None
    model, name, settings, qualified = _model(scope, spec.parser_model, client, "parser")
    request = ModelRequest(
        model=name,
        messages=[
            {"role": "system", "content": spec.parser_model_prompt or PARSER_PROMPT},
            {"role": "user", "content": text},
        ],
        output_schema=output_schema(schema),
        settings=settings,
        stream=False,
        purpose="parser",
    )
    yield scope.event(ParserModelResponseStarted)
    answer = await ask(state, model, request, qualified)
    try:
        value = parse_output(answer.text, schema)
    except OutputValidationError as exc:
        message = f"The parser model's answer does not match the output schema: {exc}"
        raise RunFailure("model_behavior_error", message) from None
    parsed.append(value)
    kind = content_type(schema)
    yield scope.event(ParserModelResponseCompleted, content=value, content_type=kind)
