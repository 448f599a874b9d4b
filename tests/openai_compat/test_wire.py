"""What goes on the wire is the SDK's own types, field for field: every payload
validates against the `openai` package's models with no field they do not know
(the clients parse leniently, so only a strict check would see a drift)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

from tests.openai_compat.conftest import WEATHER

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
FUNCTION = {"type": "function", **WEATHER["function"]}


def unknown_fields(model: Any, where: str = "") -> list[str]:
    """Fields of `model` (and of the models in it) that its type does not declare."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        found += [f"{where}.{name}" for name in model.model_extra or {}]
        for name in type(model).model_fields:
            found += unknown_fields(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for index, item in enumerate(model):
            found += unknown_fields(item, f"{where}[{index}]")
    return found


def sse(text: str) -> list[tuple[str | None, str]]:
    """(event, data) of each message of an SSE body."""
    messages = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            messages.append((fields.get("event"), fields["data"]))
    return messages


async def response_events(http: httpx.AsyncClient, **body: Any) -> list[Any]:
    answer = await http.post("/v1/responses", json={**body, "stream": True})
    events = []
    for name, data in sse(answer.text):
        event = EVENTS.validate_python(json.loads(data))
        assert name == event.type
        assert unknown_fields(event) == [], name
        events.append(event)
    return events


async def test_responses_events_and_objects_are_the_sdks_types(http: httpx.AsyncClient) -> None:
    text = await response_events(http, model="echo", input="hi", instructions="Be brief.")
    calls = await response_events(http, model="tools", input="hi", tools=[FUNCTION])
    failed = await response_events(http, model="broken", input="hi")
    assert [text[-1].type, calls[-1].type, failed[-1].type] == [
        "response.completed",
        "response.completed",
        "response.failed",
    ]
    for events in (text, calls, failed):
        retrieved = (await http.get(f"/v1/responses/{events[0].response.id}")).json()
        response = Response.model_validate(retrieved)
        assert unknown_fields(response) == []
        # (`background` is what the request said: the run does not keep it.)
        streamed = events[-1].response.model_dump(exclude={"background"})
        assert response.model_dump(exclude={"background"}) == streamed


async def test_chat_chunks_and_completions_are_the_sdks_types(http: httpx.AsyncClient) -> None:
    bodies = [
        {"model": "echo", "messages": [{"role": "user", "content": "hi"}]},
        {"model": "tools", "messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER]},
    ]
    for body in bodies:
        answer = await http.post("/v1/chat/completions", json=body)
        completion = ChatCompletion.model_validate(answer.json())
        assert unknown_fields(completion) == []
        streamed = await http.post(
            "/v1/chat/completions",
            json={**body, "stream": True, "stream_options": {"include_usage": True}},
        )
        messages = sse(streamed.text)
        assert messages[-1] == (None, "[DONE]")
        for _, data in messages[:-1]:
            assert unknown_fields(ChatCompletionChunk.model_validate(json.loads(data))) == []
