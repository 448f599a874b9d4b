"""What protocol adapters add to a run through the run service (`RunExtras`): a
client-chosen run id, instructions after the agent's, client tools for one run,
and a conversation the client sends whole (no stored history added again)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from app.errors import RunExists, ValidationFailed
from app.runs.schemas import RunContinue, RunCreate, RunExtras
from app.runs.service import RunService
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.script import Reply, ToolCall
from tests.runs.conftest import LiveServer

pytestmark = pytest.mark.usefixtures("as_operator")  # the service is called directly

WEATHER = {
    "type": "client",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
async def served(over_http: LiveServer) -> AsyncIterator[LiveServer]:
    """`over_http` with the agent `gpt`."""
    async with over_http.client() as client:
        created = await client.post(
            "/v1/agents",
            json={"id": "gpt", "model": "openai:gpt-test", "instructions": "Be brief."},
        )
        assert created.status_code == 201, created.text
    yield over_http


def service_of(server: LiveServer) -> RunService:
    app = server.app
    assert isinstance(app, FastAPI)
    runs: RunService = app.state.run_service
    return runs


async def test_instructions_and_client_tools_reach_the_model(
    served: LiveServer, fake: FakeOpenAIServer
) -> None:
    runs = service_of(served)
    fake.enqueue(Reply(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, id="call_w")]))
    extras = RunExtras.model_validate(
        {"instructions": "Answer in French.", "client_tools": [WEATHER]}
    )
    started = await runs.create("gpt", RunCreate(input="Weather?"), extras)
    output = await runs.wait(started.run.id, 0, cancel_if_abandoned=False)
    sent = fake.last_request.body
    assert sent["messages"][0] == {"role": "system", "content": "Be brief.\n\nAnswer in French."}
    assert [tool["function"]["name"] for tool in sent["tools"]] == ["get_weather"]
    assert output["status"] == "paused"
    assert [(r["tool_name"], r["kind"], r["tool_args"]) for r in output["requirements"]] == [
        ("get_weather", "external_execution", {"city": "Paris"})
    ]
    # The client's result continues the run; the tools stay the run's own.
    fake.enqueue(Reply(text="Il fait beau."))
    paused = await runs.continue_(
        started.run.id,
        RunContinue.model_validate({"tools": [{"tool_call_id": "call_w", "result": "sunny"}]}),
    )
    done = await runs.wait(started.run.id, paused.last_seq, cancel_if_abandoned=False)
    assert done["status"] == "completed"
    assert done["content"] == "Il fait beau."
    assert [tool["function"]["name"] for tool in fake.last_request.body["tools"]] == ["get_weather"]
    assert fake.last_request.body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_w",
        "content": "sunny",
    }


async def test_a_whole_conversation_from_the_client_gets_no_stored_history(
    served: LiveServer, fake: FakeOpenAIServer
) -> None:
    runs = service_of(served)
    first = await runs.create("gpt", RunCreate(input="one", session_id="conv"))
    assert (await runs.wait(first.run.id, 0, cancel_if_abandoned=False))["content"] == "one"
    conversation = [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "two"},
    ]
    body = RunCreate.model_validate({"input": conversation, "session_id": "conv"})
    second = await runs.create("gpt", body, RunExtras(session_history=False))
    assert (await runs.wait(second.run.id, 0, cancel_if_abandoned=False))["content"] == "two"
    sent = [(m["role"], m["content"]) for m in fake.last_request.body["messages"]]
    assert sent == [("system", "Be brief."), ("user", "one"), ("assistant", "one"), ("user", "two")]
    # The default adds the stored history (both runs above) before the input.
    third = await runs.create("gpt", RunCreate(input="three", session_id="conv"))
    await runs.wait(third.run.id, 0, cancel_if_abandoned=False)
    assert len(fake.last_request.body["messages"]) == 1 + 2 + 4 + 1


async def test_a_client_chosen_run_id_is_the_run_id_once(served: LiveServer) -> None:
    runs = service_of(served)
    started = await runs.create("gpt", RunCreate(input="hi"), RunExtras(run_id="client-run-1"))
    assert started.run.id == "client-run-1"
    assert (await runs.output("client-run-1")).run_id == "client-run-1"
    with pytest.raises(RunExists):
        await runs.create("gpt", RunCreate(input="again"), RunExtras(run_id="client-run-1"))
    listed = await runs.list_runs(limit=10, before=None, agent_id="gpt")
    assert [run.id for run in listed] == ["client-run-1"]


async def test_a_client_tool_may_not_take_a_name_the_agent_uses(served: LiveServer) -> None:
    runs = service_of(served)
    async with served.client() as client:
        await client.post(
            "/v1/agents", json={"id": "timed", "model": "test:echo", "tools": ["current_time"]}
        )
    clash = {**WEATHER, "name": "current_time"}
    with pytest.raises(ValidationFailed) as raised:
        await runs.create(
            "timed", RunCreate(input="hi"), RunExtras.model_validate({"client_tools": [clash]})
        )
    assert "current_time" in str(raised.value.errors)
    assert await runs.list_runs(limit=10, before=None, agent_id="timed") == []
