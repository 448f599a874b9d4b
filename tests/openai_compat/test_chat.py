"""`POST /v1/chat/completions` driven by the official `openai` client: a stored
agent answers as a model, every completion is a run, the conversation comes
whole each time, client tools round trip through `tool` messages."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, BadRequestError
from pydantic import BaseModel

from tests.openai_compat.conftest import CITY, WEATHER


async def test_a_completion_is_a_run_of_the_agent_named_by_model(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    completion = await oai.chat.completions.create(
        model="echo",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "one"},
            {"role": "user", "content": "two words"},
        ],
        user="u-7",
        metadata={"ticket": "42"},
    )
    assert completion.object == "chat.completion"
    assert completion.model == "echo"
    [choice] = completion.choices
    assert (choice.message.role, choice.message.content) == ("assistant", "two words")
    assert choice.finish_reason == "stop"
    run = (await http.get(f"/v1/runs/{completion.id}")).json()
    assert (run["agent_id"], run["user_id"], run["status"]) == ("echo", "u-7", "completed")
    assert run["metadata"] == {"ticket": "42"}
    metrics = run["metrics"]
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        metrics["input_tokens"],
        metrics["output_tokens"],
    )
    assert completion.usage.total_tokens == metrics["total_tokens"] > 0
    # The whole conversation was the input: the run's messages are the client's.
    assert [m["role"] for m in run["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    # Every completion is a run of its own session; none sees another's history.
    again = await oai.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "three"}], user="u-7"
    )
    listed = (await http.get("/v1/runs", params={"user_id": "u-7"})).json()["data"]
    assert [item["run_id"] for item in listed] == [again.id, completion.id]
    assert listed[0]["session_id"] != listed[1]["session_id"]
    assert len((await http.get(f"/v1/runs/{again.id}")).json()["messages"]) == 2


async def test_a_stream_is_chunks_then_usage_then_done(
    oai: AsyncOpenAI, served: Any, http: httpx.AsyncClient
) -> None:
    stream = await oai.chat.completions.create(
        model="slow",
        messages=[{"role": "user", "content": "the quick brown fox"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "the quick brown fox"
    assert len([chunk for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]) > 1
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    *_, usage_chunk = chunks
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    run = (await http.get(f"/v1/runs/{chunks[0].id}")).json()
    assert usage_chunk.usage.completion_tokens == run["metrics"]["output_tokens"] == 4
    # On the wire: `data:` lines only, ending with [DONE]; no usage unless asked.
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    raw = await http.post("/v1/chat/completions", json=body)
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.endswith("data: [DONE]\n\n")
    frames = [json.loads(line[6:]) for line in raw.text.splitlines() if line.startswith("data: {")]
    assert [frame["choices"][0]["finish_reason"] for frame in frames] == [None, None, "stop"]
    assert all("usage" not in frame for frame in frames)


class City(BaseModel):
    city: str
    people: int


async def test_response_format_json_schema_is_the_output_schema(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    completion = await oai.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "Where?"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": CITY, "strict": True},
        },
    )
    assert json.loads(completion.choices[0].message.content or "") == {"city": "a", "people": 0}
    run = (await http.get(f"/v1/runs/{completion.id}")).json()
    assert (run["content"], run["content_type"]) == ({"city": "a", "people": 0}, "city")
    # The SDK's own structured output helper parses it into the model.
    parsed = await oai.chat.completions.parse(
        model="echo", messages=[{"role": "user", "content": "Where?"}], response_format=City
    )
    assert parsed.choices[0].message.parsed == City(city="a", people=0)
    json_mode = await oai.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "Anything"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(json_mode.choices[0].message.content or "") == {}


async def test_client_tools_end_the_answer_and_their_results_come_back_as_messages(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await oai.chat.completions.create(model="tools", messages=messages, tools=[WEATHER])
    [choice] = first.choices
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "a"},
    )
    paused = (await http.get(f"/v1/runs/{first.id}")).json()
    assert paused["status"] == "paused"
    assert [(r["tool_call_id"], r["kind"]) for r in paused["requirements"]] == [
        (call.id, "external_execution")
    ]
    # The client runs the tool and sends the whole conversation again.
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = await oai.chat.completions.create(model="tools", messages=messages, tools=[WEATHER])
    assert second.id != first.id
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "Called 1 tools."
    run = (await http.get(f"/v1/runs/{second.id}")).json()
    assert run["messages"][2] == {"role": "tool", "tool_call_id": call.id, "content": "sunny"}
    # Streamed, the calls come as tool-call deltas and the same finish reason.
    stream = await oai.chat.completions.create(
        model="tools", messages=messages[:1], tools=[WEATHER], stream=True
    )
    chunks = [chunk async for chunk in stream if chunk.choices]
    deltas = [call for c in chunks for call in c.choices[0].delta.tool_calls or []]
    assert [(d.index, d.function and d.function.name) for d in deltas] == [(0, "get_weather")]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


UNSUPPORTED: list[tuple[dict[str, Any], str]] = [
    ({"n": 2}, "n"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"audio": {"voice": "alloy", "format": "mp3"}}, "audio"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"functions": [{"name": "f"}]}, "functions"),
]


async def test_a_parameter_that_cannot_be_honoured_is_refused_by_name(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    for params, param in UNSUPPORTED:
        with pytest.raises(BadRequestError) as raised:
            await oai.chat.completions.create(
                model="echo", messages=[{"role": "user", "content": "hi"}], **params
            )
        assert (raised.value.param, raised.value.code) == (param, "unsupported_parameter")
    assert (await http.get("/v1/runs")).json()["data"] == []
    # What it can honour it passes to the model: a run is made.
    honoured = await oai.chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "hi"}],
        n=1,
        logprobs=False,
        tool_choice="none",
        parallel_tool_calls=False,
        temperature=0.2,
        max_completion_tokens=10,
        store=False,
    )
    assert honoured.choices[0].message.content == "hi"
