"""The Responses API driven by the official `openai` client: text, typed stream
events with stable sequence numbers, structured output, client function tools,
`previous_response_id`, background runs, cancel, resume and delete."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, ConflictError, NotFoundError
from pydantic import BaseModel

from tests.openai_compat.conftest import CITY, LONG, WEATHER

FUNCTION = {"type": "function", **WEATHER["function"]}
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def collapsed(types: list[str]) -> list[str]:
    """Event types with runs of text deltas as one (how many arrive varies)."""
    out: list[str] = []
    for kind in types:
        if not (out and kind == out[-1] == "response.output_text.delta"):
            out.append(kind)
    return out


async def test_a_response_is_a_run_of_the_agent_named_by_model(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    response = await oai.responses.create(
        model="echo", input="hello there", instructions="Be terse.", user="u-3"
    )
    assert (response.object, response.status, response.model) == ("response", "completed", "echo")
    assert response.output_text == "hello there"
    assert response.instructions == "Be terse."
    [item] = response.output
    assert item.type == "message" and item.role == "assistant" and item.status == "completed"
    run = (await http.get(f"/v1/runs/{response.id}")).json()
    assert (run["agent_id"], run["user_id"], run["content"]) == ("echo", "u-3", "hello there")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (
        run["metrics"]["input_tokens"],
        run["metrics"]["output_tokens"],
    )
    listed = (await http.get("/v1/runs", params={"user_id": "u-3"})).json()["data"]
    assert [item["run_id"] for item in listed] == [response.id]
    # Retrieved later, it is the same Response.
    retrieved = await oai.responses.retrieve(response.id)
    assert retrieved.model_dump(exclude={"background"}) == response.model_dump(
        exclude={"background"}
    )
    # Items as input: messages, with text parts.
    items = await oai.responses.create(
        model="echo",
        input=[
            {"role": "developer", "content": "Answer with the last words."},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x y"}]},
        ],
    )
    assert items.output_text == "x y"


async def test_a_stream_is_the_typed_events_numbered_from_zero(oai: AsyncOpenAI) -> None:
    stream = await oai.responses.create(model="slow", input="one two three", stream=True)
    events = [event async for event in stream]
    assert collapsed([event.type for event in events]) == TEXT_EVENTS
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert "".join(deltas) == "one two three" and len(deltas) > 1
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "one two three"
    assert completed.response.usage is not None and completed.response.usage.output_tokens == 3
    # The SDK's stream helper accumulates it to the same Response GET returns.
    async with oai.responses.stream(model="echo", input="via the helper") as helper:
        async for _ in helper:
            pass
        final = await helper.get_final_response()
    assert final.output_text == "via the helper"
    retrieved = await oai.responses.retrieve(final.id)
    assert [item.id for item in retrieved.output] == [item.id for item in final.output]


class City(BaseModel):
    city: str
    people: int


async def test_text_format_json_schema_is_the_output_schema(oai: AsyncOpenAI) -> None:
    response = await oai.responses.create(
        model="echo",
        input="Where?",
        text={"format": {"type": "json_schema", "name": "city", "schema": CITY, "strict": True}},
    )
    assert json.loads(response.output_text) == {"city": "a", "people": 0}
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"
    parsed = await oai.responses.parse(model="echo", input="Where?", text_format=City)
    assert parsed.output_parsed == City(city="a", people=0)


async def test_a_function_call_ends_the_response_and_its_output_continues_it(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    first = await oai.responses.create(
        model="tools", input="Weather in Paris?", tools=[FUNCTION], user="u-1"
    )
    assert first.status == "completed"
    [call] = first.output
    assert call.type == "function_call"
    assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "a"})
    assert [tool.name for tool in first.tools] == ["get_weather"]
    run = (await http.get(f"/v1/runs/{first.id}")).json()
    assert run["status"] == "paused"
    second = await oai.responses.create(
        model="tools",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[FUNCTION],
        user="u-1",
    )
    assert second.id != first.id
    assert second.output_text == "Called 1 tools."
    after = (await http.get(f"/v1/runs/{second.id}")).json()
    assert after["session_id"] == run["session_id"]
    assert [m["role"] for m in after["messages"]] == ["user", "assistant", "tool", "assistant"]
    # The stream says the same: a function_call item, its arguments, completed.
    stream = await oai.responses.create(
        model="tools", input="Again?", tools=[FUNCTION], stream=True
    )
    types = [event.type async for event in stream]
    assert types[2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    # Without the output, the follow-up is refused: the call is unanswered.
    with pytest.raises(Exception) as refused:
        await oai.responses.create(model="tools", previous_response_id=first.id, input="and?")
    assert getattr(refused.value, "status_code", None) == 400
    assert "no tool result" in str(refused.value)


async def test_previous_response_id_continues_that_session(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    first = await oai.responses.create(model="echo", input="my name is Ada")
    second = await oai.responses.create(
        model="echo", input="what is my name?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    runs = [(await http.get(f"/v1/runs/{r.id}")).json() for r in (first, second)]
    assert runs[0]["session_id"] == runs[1]["session_id"]
    history = (await http.get(f"/v1/sessions/{runs[0]['session_id']}/messages")).json()
    assert [m["content"] for m in history["messages"]] == [
        "my name is Ada",
        "my name is Ada",
        "what is my name?",
        "what is my name?",
    ]
    with pytest.raises(NotFoundError) as missing:
        await oai.responses.create(model="echo", input="x", previous_response_id="nope")
    assert missing.value.param == "previous_response_id"


async def test_a_background_response_is_retrieved_when_done(oai: AsyncOpenAI) -> None:
    started = await oai.responses.create(model="slow", input="a b c d", background=True)
    assert started.background is True
    assert started.status in ("queued", "in_progress")
    assert started.output == []
    async with asyncio.timeout(10):
        while True:
            current = await oai.responses.retrieve(started.id)
            if current.status not in ("queued", "in_progress"):
                break
            await asyncio.sleep(0.05)
    assert current.status == "completed"
    assert current.output_text == "a b c d"


async def test_cancel_answers_the_response_and_the_run_ends_cancelled(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    started = await oai.responses.create(model="slow", input=LONG, background=True)
    cancelled = await oai.responses.cancel(started.id)
    assert (cancelled.id, cancelled.status) == (started.id, "cancelled")
    assert (await http.get(f"/v1/runs/{started.id}")).json()["status"] == "cancelled"
    assert (await oai.responses.cancel(started.id)).status == "cancelled"  # again: the same
    done = await oai.responses.create(model="echo", input="finished")
    assert (await oai.responses.cancel(done.id)).status == "completed"  # nothing to cancel
    with pytest.raises(NotFoundError):
        await oai.responses.cancel("no-such-response")


async def test_a_stream_resumes_after_a_sequence_number(oai: AsyncOpenAI) -> None:
    stream = await oai.responses.create(model="slow", input=LONG, stream=True)
    seen: list[Any] = []
    async for event in stream:
        seen.append(event)
        if event.type == "response.output_text.delta" and len(seen) > 5:
            break
    await stream.close()
    last = seen[-1].sequence_number
    resumed = await oai.responses.retrieve(seen[0].response.id, stream=True, starting_after=last)
    rest = [event async for event in resumed]
    assert rest[0].sequence_number == last + 1
    assert rest[-1].type == "response.completed"
    assert "".join(e.delta for e in seen + rest if e.type == "response.output_text.delta") == LONG
    # From the start, the replay has the same events under the same numbers.
    replay = await oai.responses.retrieve(seen[0].response.id, stream=True)
    again = [event async for event in replay]
    key = [(e.sequence_number, e.type, getattr(e, "delta", None)) for e in again]
    assert key == [(e.sequence_number, e.type, getattr(e, "delta", None)) for e in seen + rest]


async def test_delete_forgets_the_response_and_its_run(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    response = await oai.responses.create(model="echo", input="forget me")
    await oai.responses.delete(response.id)
    with pytest.raises(NotFoundError):
        await oai.responses.retrieve(response.id)
    assert (await http.get(f"/v1/runs/{response.id}")).status_code == 404
    assert (await http.delete(f"/v1/responses/{response.id}")).status_code == 404
    # A running one is cancelled, then deleted.
    running = await oai.responses.create(model="slow", input=LONG, background=True)
    deleted = await http.delete(f"/v1/responses/{running.id}")
    assert deleted.json() == {"id": running.id, "object": "response.deleted", "deleted": True}
    assert (await http.get(f"/v1/runs/{running.id}")).status_code == 404


async def test_a_run_waiting_for_a_person_is_an_incomplete_response(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    agent = {
        "id": "careful",
        "model": "test:tools",
        "tools": [{"name": "current_time", "requires_confirmation": True}],
    }
    assert (await http.post("/v1/agents", json=agent)).status_code == 201
    response = await oai.responses.create(model="careful", input="What time is it?")
    assert (response.status, response.output) == ("incomplete", [])
    events = [e async for e in await oai.responses.create(model="careful", input="x", stream=True)]
    assert events[-1].type == "response.incomplete"
    # Chat Completions cannot say it: an error pointing to the native continue.
    with pytest.raises(ConflictError) as raised:
        await oai.chat.completions.create(
            model="careful", messages=[{"role": "user", "content": "x"}]
        )
    assert raised.value.code == "run_paused" and "/continue" in raised.value.message
    # The person answers natively; the same response then completes.
    paused = (await http.get(f"/v1/runs/{response.id}")).json()
    [requirement] = paused["requirements"]
    decision = {"tools": [{"tool_call_id": requirement["tool_call_id"], "confirmed": True}]}
    assert (await http.post(f"/v1/runs/{response.id}/continue", json=decision)).status_code == 200
    done = await oai.responses.retrieve(response.id)
    assert (done.status, done.output_text) == ("completed", "Called 1 tools.")
