"""AnthropicModel against a fake Messages API server over real HTTP."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from app.engine.models.anthropic import AnthropicModel
from app.engine.models.base import (
    ContentDelta,
    FinishDelta,
    ModelProviderError,
    OutputSchema,
    ReasoningDelta,
    ToolCallDelta,
    ToolDefinition,
    UsageDelta,
)
from tests.fakes import FakeAnthropicServer, Reply, ToolCall, error_reply
from tests.providers.helpers import API_KEY, ask, collect, first_content_then_cancel, joined

WEATHER = ToolDefinition(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


async def test_text_streams_as_content_then_usage_then_finish(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel
) -> None:
    anthropic_server.enqueue(Reply(text="Hello big world", usage=(12, 3)))

    deltas = await collect(anthropic_model, ask("Hi", model="claude-fake-1"))

    assert joined(deltas) == joined(
        [
            ContentDelta("Hello "),
            ContentDelta("big "),
            ContentDelta("world"),
            UsageDelta(input_tokens=12, output_tokens=3),
            FinishDelta("stop"),
        ]
    )
    request = anthropic_server.last_request
    assert request.path == "/v1/messages"
    assert request.body == {
        "model": "claude-fake-1",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "stream": True,
    }


async def test_thinking_then_text_then_two_tool_calls(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel
) -> None:
    anthropic_server.enqueue(
        Reply(
            reasoning="Two cities.",
            text="Checking.",
            tool_calls=[
                ToolCall("get_weather", {"city": "Paris"}, id="toolu_a"),
                ToolCall("get_weather", {"city": "Rome"}, id="toolu_b"),
            ],
            piece_size=7,
        )
    )

    deltas = await collect(anthropic_model, ask("Weather?", tools=[WEATHER]))

    assert joined(deltas) == joined(
        [
            ReasoningDelta("Two "),
            ReasoningDelta("cities."),
            ContentDelta("Checking."),
            ToolCallDelta(0, id="toolu_a", name="get_weather", arguments=""),
            ToolCallDelta(0, arguments='{"city"'),
            ToolCallDelta(0, arguments=':"Paris'),
            ToolCallDelta(0, arguments='"}'),
            ToolCallDelta(1, id="toolu_b", name="get_weather", arguments=""),
            ToolCallDelta(1, arguments='{"city"'),
            ToolCallDelta(1, arguments=':"Rome"'),
            ToolCallDelta(1, arguments="}"),
            UsageDelta(10, 5),
            FinishDelta("tool_calls"),
        ]
    )
    body = anthropic_server.last_request.body
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert "tool_choice" not in body


async def test_structured_output_is_a_forced_tool_streamed_as_content(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel
) -> None:
    answer = ToolCall("City_answer", {"city": "Paris"})
    anthropic_server.enqueue(Reply(tool_calls=[answer], piece_size=7))

    deltas = await collect(anthropic_model, ask(output_schema=OutputSchema("City answer", CITY)))

    assert joined(deltas) == joined(
        [
            ContentDelta('{"city"'),
            ContentDelta(':"Paris'),
            ContentDelta('"}'),
            UsageDelta(10, 5),
            FinishDelta("stop"),
        ]
    )
    content = "".join(d.text for d in deltas if isinstance(d, ContentDelta))
    assert orjson.loads(content) == {"city": "Paris"}
    body = anthropic_server.last_request.body
    assert body["tool_choice"] == {"type": "tool", "name": "City_answer"}
    assert body["tools"] == [
        {
            "name": "City_answer",
            "description": "Give your final answer by calling this tool.",
            "input_schema": CITY,
        }
    ]


async def test_structured_output_with_tools_requires_some_tool(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel
) -> None:
    anthropic_server.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Rome"}, id="t1")]))

    deltas = await collect(
        anthropic_model, ask(tools=[WEATHER], output_schema=OutputSchema("answer", CITY))
    )

    assert deltas[0] == ToolCallDelta(0, id="t1", name="get_weather", arguments="")
    assert deltas[-1] == FinishDelta("tool_calls")
    body = anthropic_server.last_request.body
    assert body["tool_choice"] == {"type": "any"}
    assert [tool["name"] for tool in body["tools"]] == ["get_weather", "answer"]


async def test_settings_are_mapped_to_the_messages_api(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel
) -> None:
    settings = {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 256,
        "stop": "END",
        "seed": 7,  # no counterpart: dropped
        "frequency_penalty": 0.5,  # no counterpart: dropped
        "metadata": {"user_id": "u-1"},
        "parallel_tool_calls": False,
    }

    await collect(anthropic_model, ask(settings=settings, tools=[WEATHER]))

    body = anthropic_server.last_request.body
    assert {key: body[key] for key in body if key not in ("model", "messages", "tools")} == {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 256,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "stream": True,
    }


async def test_messages_are_translated_to_anthropic_turns(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel
) -> None:
    calls = [
        {"id": "toolu_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "toolu_2", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
    ]  # fmt: skip
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "system", "content": "Answer in English."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare:"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        },
        {"role": "assistant", "content": "Let me check.", "tool_calls": calls,
         "reasoning_content": "Two calls."},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Rainy"},
        {"role": "user", "content": "And tomorrow?"},
    ]  # fmt: skip

    await collect(anthropic_model, ask(messages=messages))

    body = anthropic_server.last_request.body
    assert body["system"] == "Be terse.\n\nAnswer in English."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Compare:"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                             "data": "/9j/4AAQ"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                 "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
                 "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "Rainy"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]  # fmt: skip


async def test_the_api_key_is_sent(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel
) -> None:
    await collect(anthropic_model, ask())

    headers = anthropic_server.last_request.headers
    # anthropic 2.x sends the key as a bearer token (1.x used x-api-key)
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert "anthropic-version" in headers


@pytest.mark.parametrize("status", [500, 429, 529])
async def test_a_retryable_error_is_retried(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel, status: int
) -> None:
    anthropic_server.enqueue(error_reply(status), Reply(text="ok"))

    deltas = await collect(anthropic_model, ask())

    assert deltas == [ContentDelta("ok"), UsageDelta(10, 5), FinishDelta("stop")]
    assert len(anthropic_server.requests) == 2


async def test_a_persistent_error_becomes_a_provider_error_after_the_retries(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel
) -> None:
    anthropic_server.enqueue(*(error_reply(529, "Overloaded") for _ in range(3)))

    with pytest.raises(ModelProviderError) as caught:
        await collect(anthropic_model, ask())

    assert (caught.value.status_code, str(caught.value)) == (529, "anthropic: HTTP 529: Overloaded")
    assert len(anthropic_server.requests) == 3


async def test_a_client_error_is_not_retried(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel
) -> None:
    anthropic_server.enqueue(error_reply(400, "messages: roles must alternate"))

    with pytest.raises(ModelProviderError, match="roles must alternate") as caught:
        await collect(anthropic_model, ask())

    assert caught.value.status_code == 400
    assert len(anthropic_server.requests) == 1


async def test_an_error_event_inside_the_stream_raises(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel
) -> None:
    anthropic_server.enqueue(Reply(text="partial", error="Overloaded"))
    received = []

    with pytest.raises(ModelProviderError, match="Overloaded") as caught:
        async for delta in anthropic_model.stream(ask()):
            received.append(delta)

    assert received == [ContentDelta("partial")]
    assert caught.value.status_code == 529


async def test_a_stream_cut_off_before_message_stop_is_a_provider_error(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel
) -> None:
    start = b'event: message_start\ndata: {"type": "message_start", "message": {}}\n\n'
    anthropic_server.enqueue(Reply(raw=[start]))

    with pytest.raises(ModelProviderError, match="ended early"):
        await collect(anthropic_model, ask())


async def test_cancelling_the_consumer_closes_the_response_promptly(
    anthropic_server: FakeAnthropicServer, anthropic_model: AnthropicModel
) -> None:
    anthropic_server.enqueue(Reply(text=["tick "] * 50, delay=0.2))
    task, started = await first_content_then_cancel(anthropic_model, ask())
    await asyncio.wait_for(started.wait(), 3)

    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - cancelled_at < 0.5

    await asyncio.sleep(0.1)
    assert anthropic_server.last_request.aborted  # the server saw the connection close


async def test_the_default_reply_echoes_the_last_user_text() -> None:
    async with FakeAnthropicServer() as server:
        model = AnthropicModel(base_url=server.base_url, api_key=API_KEY)
        try:
            deltas = await collect(model, ask("echo me"))
        finally:
            await model.aclose()

    assert joined(deltas)[0] == ContentDelta("echo me")
