"""One run, any protocol: a response is a run the native routes read, follow and
cancel; a native run is a response the Responses API retrieves and streams."""

from __future__ import annotations

import httpx
from openai import AsyncOpenAI

from tests.openai_compat.conftest import LONG
from tests.sse_client import collapsed, collect


async def test_a_response_is_a_run_with_its_stored_events(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    response = await oai.responses.create(model="slow", input="read me natively", stream=True)
    events = [event async for event in response]
    run_id = events[0].response.id
    run = (await http.get(f"/v1/runs/{run_id}")).json()
    assert (run["status"], run["content"]) == ("completed", "read me natively")
    async with http.stream("GET", f"/v1/runs/{run_id}/events") as stream:
        messages = await collect(stream)
    assert collapsed(messages) == [
        "RunStarted",
        "RunContent",
        "RunContentCompleted",
        "RunCompleted",
    ]
    assert [m.id for m in messages] == list(range(1, len(messages) + 1))
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "".join(m.data["content"] for m in messages if m.event == "RunContent") == streamed


async def test_a_native_run_is_a_response(oai: AsyncOpenAI, http: httpx.AsyncClient) -> None:
    created = await http.post(
        "/v1/agents/echo/runs", json={"input": "native words", "user_id": "u-9"}
    )
    run = created.json()
    response = await oai.responses.retrieve(run["run_id"])
    assert (response.id, response.status, response.model) == (run["run_id"], "completed", "echo")
    assert (response.output_text, response.user) == ("native words", "u-9")
    assert response.usage is not None
    assert response.usage.total_tokens == run["metrics"]["total_tokens"]
    replay = await oai.responses.retrieve(run["run_id"], stream=True)
    types = [event.type async for event in replay]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert "response.output_text.delta" in types


async def test_a_response_cancelled_natively_says_so(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    started = await oai.responses.create(model="slow", input=LONG, background=True)
    cancelled = await http.post(f"/v1/runs/{started.id}/cancel")
    assert cancelled.status_code == 202
    response = await oai.responses.retrieve(started.id)
    assert response.status == "cancelled"
    events = [event async for event in await oai.responses.retrieve(started.id, stream=True)]
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "cancelled"


async def test_a_chat_completion_is_a_run_listed_and_followed_natively(
    oai: AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    completion = await oai.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "listed"}], user="u-5"
    )
    [listed] = (await http.get("/v1/runs", params={"user_id": "u-5"})).json()["data"]
    assert (listed["run_id"], listed["agent_id"]) == (completion.id, "echo")
    async with http.stream("GET", f"/v1/runs/{completion.id}/events") as stream:
        messages = await collect(stream)
    assert messages[-1].event == "RunCompleted"
    assert messages[-1].data["content"] == "listed"
    response = await oai.responses.retrieve(completion.id)
    assert response.output_text == "listed"
