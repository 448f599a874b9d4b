"""Whole agent runs through the Runner and ModelRegistry against the fake servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.engine.events import RunCompleted
from app.engine.guardrails import GuardrailRegistry
from app.engine.loop import Runner
from app.engine.models.registry import ModelRegistry
from app.engine.tools import ToolRegistry
from tests.engine.helpers import Agents, agent, collapse, collect, new_state
from tests.fakes import FakeAnthropicServer, FakeOpenAIServer, Reply, ToolCall
from tests.fakes.script import FakeModelServer

CITY = {
    "title": "City",
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@pytest.fixture(params=["openai", "anthropic"])
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, FakeModelServer]]:
    server = FakeOpenAIServer() if request.param == "openai" else FakeAnthropicServer()
    async with server:
        yield request.param, server


async def run_agent(provider: str, server: FakeModelServer, **fields: Any) -> Any:
    spec = agent(model=f"{provider}:fake-model", **fields)
    registry = ModelRegistry(
        openai_base_url=server.base_url if provider == "openai" else None,
        anthropic_base_url=server.base_url if provider == "anthropic" else None,
        openai_api_key="sk-test",
        anthropic_api_key="sk-test",
    )
    runner = Runner(
        models=registry,
        agents=Agents(spec),
        tools=ToolRegistry([get_weather]),
        guardrails=GuardrailRegistry(),
    )
    try:
        return await collect(runner, new_state(runner, spec, "Weather in Paris?"))
    finally:
        await registry.aclose()


async def test_a_tool_round_trip(provider: tuple[str, FakeModelServer]) -> None:
    name, server = provider
    server.enqueue(
        Reply(
            text="Let me check.",
            tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_1")],
            usage=(20, 8),
        ),
        Reply(reasoning="It says sunny.", text="It is sunny in Paris.", usage=(40, 6)),
    )

    result = await run_agent(name, server, tools=["get_weather"])

    # Deltas that arrive in one read are one event: runs of them are counted as one.
    collapsed = [n for i, n in enumerate(result.names) if n not in TEXT or result.names[i - 1] != n]
    assert collapsed == [
        "RunStarted",
        "RunContent",  # "Let me check."
        "Checkpoint",
        "ToolCallStarted",
        "Checkpoint",
        "ToolCallCompleted",
        "ReasoningStarted",
        "ReasoningStep",  # "It says sunny."
        "ReasoningCompleted",
        "RunContent",  # "It is sunny in Paris."
        "Checkpoint",
        "Checkpoint",
        "RunContentCompleted",
        "RunCompleted",
    ]
    completed = result.last
    assert isinstance(completed, RunCompleted)
    assert (completed.status, completed.content) == ("completed", "It is sunny in Paris.")
    assert completed.reasoning_content == "It says sunny."
    assert [(t.tool_name, t.tool_args, t.result) for t in completed.tools] == [
        ("get_weather", {"city": "Paris"}, "Sunny in Paris")
    ]
    metrics = completed.metrics
    assert (metrics.input_tokens, metrics.output_tokens, metrics.model_calls) == (60, 14, 2)

    assert len(server.requests) == 2
    assert server.requests[1].body["messages"][1:] == TOOL_ROUND_TRIP[name]


TEXT = {"RunContent", "ReasoningStep"}
TOOL_ROUND_TRIP = {
    "openai": [
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny in Paris"},
    ],
    "anthropic": [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "call_1", "name": "get_weather",
                 "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "Sunny in Paris"}
            ],
        },
    ],
}  # fmt: skip


async def test_structured_output(provider: tuple[str, FakeModelServer]) -> None:
    name, server = provider
    if name == "openai":
        server.enqueue(Reply(text='{"city": "Paris"}'))
    else:
        server.enqueue(Reply(tool_calls=[ToolCall("City", {"city": "Paris"})]))

    result = await run_agent(name, server, output_schema=CITY)

    assert collapse(result.names) == [
        "RunStarted",
        "RunContent",
        "Checkpoint",
        "Checkpoint",
        "RunContentCompleted",
        "RunCompleted",
    ]
    completed = result.last
    assert (completed.status, completed.content, completed.content_type) == (
        "completed",
        {"city": "Paris"},
        "City",
    )
