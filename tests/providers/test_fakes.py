"""The fake servers read back through the SDKs' own models and stream accumulators."""

from __future__ import annotations

import anthropic
import openai

from tests.fakes import FakeAnthropicServer, FakeOpenAIServer, Reply, ToolCall
from tests.providers.helpers import API_KEY

TOOL = {
    "type": "function",
    "function": {"name": "f", "parameters": {"type": "object"}},
}
REPLY = Reply(reasoning="Hmm.", text="Hi there", tool_calls=[ToolCall("f", {"a": 1}, id="c1")])


async def test_openai_fake_speaks_chat_completions() -> None:
    async with FakeOpenAIServer(REPLY, REPLY) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)
        messages: list[openai.types.chat.ChatCompletionMessageParam] = [
            {"role": "user", "content": "Hi"}
        ]
        completion = await client.chat.completions.create(model="m", messages=messages)
        async with client.chat.completions.stream(
            model="m", messages=messages, tools=[TOOL], stream_options={"include_usage": True}
        ) as stream:
            streamed = await stream.get_final_completion()
        await client.close()

    for answer in (completion, streamed):
        message = answer.choices[0].message
        assert (message.content, answer.choices[0].finish_reason) == ("Hi there", "tool_calls")
        assert message.tool_calls is not None
        call = message.tool_calls[0]
        assert call.type == "function"
        assert (call.id, call.function.name, call.function.arguments) == ("c1", "f", '{"a":1}')
        assert answer.usage is not None
        assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (10, 5)
    assert [r.body.get("stream") for r in server.requests] == [None, True]


async def test_anthropic_fake_speaks_messages() -> None:
    async with FakeAnthropicServer(REPLY, REPLY) as server:
        client = anthropic.AsyncAnthropic(base_url=server.base_url, api_key=API_KEY, max_retries=0)
        messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hi"}]
        created = await client.messages.create(model="m", max_tokens=100, messages=messages)
        async with client.messages.stream(model="m", max_tokens=100, messages=messages) as stream:
            streamed = await stream.get_final_message()
        await client.close()

    for message in (created, streamed):
        thinking, text, tool_use = message.content
        assert thinking.type == "thinking" and thinking.thinking == "Hmm."
        assert text.type == "text" and text.text == "Hi there"
        assert tool_use.type == "tool_use"
        assert (tool_use.id, tool_use.name, tool_use.input) == ("c1", "f", {"a": 1})
        assert message.stop_reason == "tool_use"
        assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 5)
