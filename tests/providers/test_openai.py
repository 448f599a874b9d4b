"""OpenAIChatModel against a fake Chat Completions server over real HTTP."""

from __future__ import annotations

import asyncio
import time

import openai
import orjson
import pytest

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
from app.engine.models.openai import OpenAIChatModel
from tests.fakes import FakeOpenAIServer, Reply, ToolCall, error_reply
from tests.providers.helpers import API_KEY, ask, collect, first_content_then_cancel, joined

WEATHER = ToolDefinition(
    name="get_weather",
    description="The weather in a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


async def test_text_streams_as_content_then_usage_then_finish(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    openai_server.enqueue(Reply(text="Hello big world", usage=(12, 3)))

    deltas = await collect(openai_model, ask("Hi", model="gpt-4o-mini"))

    assert joined(deltas) == joined(
        [
            ContentDelta("Hello "),
            ContentDelta("big "),
            ContentDelta("world"),
            UsageDelta(input_tokens=12, output_tokens=3),
            FinishDelta("stop"),
        ]
    )
    request = openai_server.last_request
    assert request.path == "/v1/chat/completions"
    assert request.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert request.completed


async def test_whole_answer_when_not_streaming(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    openai_server.enqueue(
        Reply(
            text="Let me look.",
            reasoning="Weather needs a tool.",
            tool_calls=[
                ToolCall("get_weather", {"city": "Oslo"}, id="call_a"),
                ToolCall("get_weather", {"city": "Rome"}, id="call_b"),
            ],
            usage=(30, 9),
        )
    )

    deltas = await collect(openai_model, ask("Weather?", tools=[WEATHER], stream=False))

    assert deltas == [
        ReasoningDelta("Weather needs a tool."),
        ContentDelta("Let me look."),
        ToolCallDelta(0, id="call_a", name="get_weather", arguments='{"city":"Oslo"}'),
        ToolCallDelta(1, id="call_b", name="get_weather", arguments='{"city":"Rome"}'),
        UsageDelta(input_tokens=30, output_tokens=9),
        FinishDelta("tool_calls"),
    ]
    body = openai_server.last_request.body
    assert "stream" not in body and "stream_options" not in body
    assert body["tools"][0]["function"]["name"] == "get_weather"


async def test_not_streaming_errors_are_provider_errors(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    openai_server.enqueue(error_reply(400, "context too long"))
    with pytest.raises(ModelProviderError) as failed:
        await collect(openai_model, ask(stream=False))
    assert failed.value.status_code == 400
    assert "context too long" in str(failed.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "overloaded", "code": 503}}', "overloaded"),
        (b'{"choices": []}', "no message"),
        (b"[1, 2]", "unexpected payload"),
    ],
)
async def test_not_streaming_bad_bodies_are_provider_errors(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel, body: bytes, message: str
) -> None:
    openai_server.enqueue(Reply(raw=[body]))
    with pytest.raises(ModelProviderError, match=message):
        await collect(openai_model, ask(stream=False))


async def test_empty_queue_echoes_the_last_user_message(openai_model: OpenAIChatModel) -> None:
    deltas = await collect(openai_model, ask("echo this"))

    assert joined(deltas)[0] == ContentDelta("echo this")


async def test_two_parallel_tool_calls_split_across_chunks(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    openai_server.enqueue(
        Reply(
            tool_calls=[
                ToolCall("get_weather", {"city": "Paris"}, id="call_a"),
                ToolCall("get_weather", {"city": "Rome"}, id="call_b"),
            ],
            piece_size=7,
        )
    )

    deltas = await collect(openai_model, ask("Weather?", tools=[WEATHER]))

    assert deltas == [
        ToolCallDelta(0, id="call_a", name="get_weather", arguments=""),
        ToolCallDelta(0, arguments='{"city"'),
        ToolCallDelta(0, arguments=':"Paris'),
        ToolCallDelta(0, arguments='"}'),
        ToolCallDelta(1, id="call_b", name="get_weather", arguments=""),
        ToolCallDelta(1, arguments='{"city"'),
        ToolCallDelta(1, arguments=':"Rome"'),
        ToolCallDelta(1, arguments="}"),
        UsageDelta(10, 5),
        FinishDelta("tool_calls"),
    ]
    assert openai_server.last_request.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
async def test_reasoning_passes_through(field: str) -> None:
    async with FakeOpenAIServer(reasoning_field=field) as server:
        server.enqueue(Reply(reasoning="Think first.", text="Done."))
        model = OpenAIChatModel(base_url=server.base_url, api_key=API_KEY)
        try:
            deltas = await collect(model, ask())
        finally:
            await model.aclose()

    assert joined(deltas) == joined(
        [
            ReasoningDelta("Think "),
            ReasoningDelta("first."),
            ContentDelta("Done."),
            UsageDelta(10, 5),
            FinishDelta("stop"),
        ]
    )


async def test_structured_output_asks_for_a_json_schema(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    openai_server.enqueue(Reply(text=['{"city":', ' "Paris"}']))

    deltas = await collect(
        openai_model, ask(output_schema=OutputSchema("City answer", schema, True))
    )

    assert joined(deltas)[0] == ContentDelta('{"city": "Paris"}')
    assert orjson.loads("".join(d.text for d in deltas if isinstance(d, ContentDelta))) == {
        "city": "Paris"
    }
    assert openai_server.last_request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "City_answer", "schema": schema, "strict": True},
    }


async def test_settings_pass_through_and_unknown_ones_go_in_the_body(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    settings = {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 64,
        "stop": ["END"],
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.3,
        "top_k": 40,  # not an OpenAI parameter: sent as-is for compatible servers
        "extra_body": {"repetition_penalty": 1.1},
        "logprobs": None,  # unset
        "stream": False,  # the provider always streams
    }

    await collect(openai_model, ask(settings=settings))

    body = openai_server.last_request.body
    assert {key: body[key] for key in body if key not in ("model", "messages")} == {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 64,
        "stop": ["END"],
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.3,
        "top_k": 40,
        "repetition_penalty": 1.1,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_tool_choice_and_parallel_tool_calls_go_only_with_tools(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    settings = {"tool_choice": "none", "parallel_tool_calls": False}
    await collect(openai_model, ask(settings=settings))
    body = openai_server.last_request.body
    assert "tool_choice" not in body and "parallel_tool_calls" not in body
    tool = ToolDefinition("f", "", {"type": "object", "properties": {}})
    await collect(openai_model, ask(settings=settings, tools=[tool]))
    body = openai_server.last_request.body
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ("none", False)


async def test_messages_go_out_in_chat_completions_shape(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "Look:"}, image]},
        {"role": "assistant", "content": None, "tool_calls": [call], "reasoning_content": "Hm."},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": {"temp": 21}},
    ]

    await collect(openai_model, ask(messages=messages))

    assert openai_server.last_request.body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "Look:"}, image]},
        {"role": "assistant", "content": None, "tool_calls": [call]},  # reasoning stays local
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": '{"temp":21}'},
    ]


async def test_requests_follow_the_clients_base_url(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    # The client remembers the URL it built for a path; a new base_url is honoured.
    for _ in range(2):
        await collect(openai_model, ask())
    assert len(openai_server.requests) == 2
    assert {request.path for request in openai_server.requests} == {"/v1/chat/completions"}
    async with FakeOpenAIServer() as other:
        openai_model._client.base_url = other.base_url
        await collect(openai_model, ask())
        assert len(other.requests) == 1 and other.last_request.path == "/v1/chat/completions"
    assert len(openai_server.requests) == 2


async def test_the_api_key_goes_in_the_authorization_header(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    await collect(openai_model, ask())

    assert openai_server.last_request.headers["authorization"] == f"Bearer {API_KEY}"


async def test_the_user_agent_is_the_sdks_own(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    await collect(openai_model, ask())

    assert (
        openai_server.last_request.headers["user-agent"]
        == f"AsyncOpenAI/Python {openai.__version__}"
    )


async def test_the_body_is_json_with_its_content_type(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    text = 'Grüße, 世界 \u2028 "quoted"'
    await collect(openai_model, ask(text))

    request = openai_server.last_request
    assert request.headers["content-type"] == "application/json"
    assert request.body["messages"] == [{"role": "user", "content": text}]
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("status", [500, 429])
async def test_a_retryable_error_is_retried(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel, status: int
) -> None:
    openai_server.enqueue(error_reply(status), Reply(text="ok"))

    deltas = await collect(openai_model, ask())

    assert deltas == [ContentDelta("ok"), UsageDelta(10, 5), FinishDelta("stop")]
    assert [r.headers["x-stainless-retry-count"] for r in openai_server.requests] == ["0", "1"]
    assert openai_server.requests[0].body == openai_server.requests[1].body


async def test_a_persistent_error_becomes_a_provider_error_after_the_retries(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    openai_server.enqueue(*(error_reply(500, "upstream exploded") for _ in range(3)))

    with pytest.raises(ModelProviderError) as caught:
        await collect(openai_model, ask())

    assert caught.value.status_code == 500
    assert str(caught.value) == "openai: HTTP 500: upstream exploded"
    assert len(openai_server.requests) == 3  # max_retries=2


async def test_a_client_error_is_not_retried(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    openai_server.enqueue(error_reply(400, "bad schema"))

    with pytest.raises(ModelProviderError) as caught:
        await collect(openai_model, ask())

    assert (caught.value.status_code, str(caught.value)) == (400, "openai: HTTP 400: bad schema")
    assert len(openai_server.requests) == 1


async def test_an_auth_error_does_not_echo_the_server_message(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    openai_server.enqueue(error_reply(401, f"Incorrect API key provided: {API_KEY}"))

    with pytest.raises(ModelProviderError) as caught:
        await collect(openai_model, ask())

    assert caught.value.status_code == 401
    assert API_KEY not in str(caught.value)


async def test_an_error_inside_the_stream_raises_after_what_came_before(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    openai_server.enqueue(Reply(text="partial", error="The server had an error"))
    received = []

    with pytest.raises(ModelProviderError, match="The server had an error"):
        async for delta in openai_model.stream(ask()):
            received.append(delta)

    assert received == [ContentDelta("partial")]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([b"data: {not json\n\n"], "openai: invalid JSON in the response stream"),
        ([b'data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n'],
         "openai: the response stream ended early"),
    ],
)  # fmt: skip
async def test_a_broken_stream_is_a_provider_error(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel, raw: list[bytes], message: str
) -> None:
    openai_server.enqueue(Reply(raw=raw))

    with pytest.raises(ModelProviderError) as caught:
        await collect(openai_model, ask())

    assert str(caught.value) == message
    assert len(openai_server.requests) == 1  # once streaming began, nothing is retried


async def test_a_stalled_stream_times_out() -> None:
    async with FakeOpenAIServer(Reply(text="a b", delay=2)) as server:
        model = OpenAIChatModel(base_url=server.base_url, api_key=API_KEY, timeout=0.2)
        try:
            with pytest.raises(ModelProviderError, match="timed out"):
                await collect(model, ask())
        finally:
            await model.aclose()


async def test_an_unreachable_server_is_a_provider_error() -> None:
    async with FakeOpenAIServer() as server:
        base_url = server.base_url
    model = OpenAIChatModel(base_url=base_url, api_key=API_KEY, max_retries=0)
    try:
        with pytest.raises(ModelProviderError, match="could not connect to 127.0.0.1") as caught:
            await collect(model, ask())
    finally:
        await model.aclose()
    assert caught.value.status_code is None


async def test_cancelling_the_consumer_closes_the_response_promptly(
    openai_server: FakeOpenAIServer, openai_model: OpenAIChatModel
) -> None:
    openai_server.enqueue(Reply(text=["tick "] * 50, delay=0.2))
    task, started = await first_content_then_cancel(openai_model, ask())
    await asyncio.wait_for(started.wait(), 2)

    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - cancelled_at < 0.5

    await asyncio.sleep(0.1)
    assert openai_server.last_request.aborted  # the server saw the connection close
