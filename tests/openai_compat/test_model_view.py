"""What the model is sent for requests of either API (a fake OpenAI server in
front): the agent's instructions then the request's, the client's conversation
once, the history of `previous_response_id`'s session, the client's tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.script import Reply, ToolCall
from tests.openai_compat.conftest import WEATHER
from tests.runs.conftest import LiveServer


@pytest.fixture
async def gpt(over_http: LiveServer) -> AsyncIterator[AsyncOpenAI]:
    """The official client of `over_http`, with the agent `gpt`."""
    async with over_http.client() as http:
        agent = {"id": "gpt", "model": "openai:gpt-test", "instructions": "Be brief."}
        assert (await http.post("/v1/agents", json=agent)).status_code == 201
    async with AsyncOpenAI(base_url=f"{over_http.url}/v1", api_key="k", max_retries=0) as client:
        yield client


def sent(fake: FakeOpenAIServer) -> list[tuple[str, Any]]:
    return [(m["role"], m.get("content")) for m in fake.last_request.body["messages"]]


async def test_a_response_sends_instructions_and_its_sessions_history(
    gpt: AsyncOpenAI, fake: FakeOpenAIServer
) -> None:
    fake.enqueue(Reply(text="Hello Ada."))
    first = await gpt.responses.create(
        model="gpt", input="I am Ada.", instructions="Answer in one line.", temperature=0.3
    )
    assert first.output_text == "Hello Ada."
    assert sent(fake) == [("system", "Be brief.\n\nAnswer in one line."), ("user", "I am Ada.")]
    assert fake.last_request.body["temperature"] == 0.3
    fake.enqueue(Reply(text="Ada."))
    await gpt.responses.create(model="gpt", input="Who am I?", previous_response_id=first.id)
    assert sent(fake) == [
        ("system", "Be brief."),
        ("user", "I am Ada."),
        ("assistant", "Hello Ada."),
        ("user", "Who am I?"),
    ]


async def test_a_function_call_output_continues_the_paused_conversation(
    gpt: AsyncOpenAI, fake: FakeOpenAIServer
) -> None:
    function = {"type": "function", **WEATHER["function"]}
    fake.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_w")]))
    first = await gpt.responses.create(model="gpt", input="Weather?", tools=[function])
    assert [tool["function"]["name"] for tool in fake.last_request.body["tools"]] == ["get_weather"]
    [call] = first.output
    assert call.type == "function_call" and call.call_id == "call_w"
    fake.enqueue(Reply(text="Sunny."))
    second = await gpt.responses.create(
        model="gpt",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_w", "output": "sunny"}],
        tools=[function],
    )
    assert second.output_text == "Sunny."
    messages = fake.last_request.body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[2]["tool_calls"][0]["id"] == "call_w"
    assert messages[3] == {"role": "tool", "tool_call_id": "call_w", "content": "sunny"}


async def test_a_chat_conversation_is_sent_once_as_the_client_wrote_it(
    gpt: AsyncOpenAI, fake: FakeOpenAIServer
) -> None:
    conversation: list[Any] = [
        {"role": "system", "content": "Use metric units."},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "-3 C"},
    ]
    fake.enqueue(Reply(text="Cold."))
    answer = await gpt.chat.completions.create(
        model="gpt", messages=conversation, tools=[WEATHER], max_tokens=20, seed=4
    )
    assert answer.choices[0].message.content == "Cold."
    body = fake.last_request.body
    assert [m["role"] for m in body["messages"]] == [
        "system",
        "system",
        "user",
        "assistant",
        "tool",
    ]
    assert body["messages"][0]["content"] == "Be brief."
    assert body["messages"][3]["tool_calls"] == conversation[2]["tool_calls"]
    assert (body["max_tokens"], body["seed"]) == (20, 4)
