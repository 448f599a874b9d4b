"""run_config's guardrails and handoff_input_filter against an OpenAI-compatible
server over real HTTP: what the model is sent, and what it is never asked."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.script import Reply, ToolCall
from tests.runs.conftest import LiveServer

AGENTS: list[dict[str, Any]] = [
    {"id": "b", "model": "openai:gpt-b", "instructions": "You are B."},
    {
        "id": "root",
        "model": "openai:gpt-root",
        "instructions": "Route.",
        "tools": ["calculator"],
        "handoffs": ["b"],
    },
    {"id": "judge", "model": "openai:gpt-judge", "instructions": "Say yes to trip."},
    {"id": "plain", "model": "openai:gpt-plain"},
]
# The root agent computes, then hands over saying so: a turn with text and a handoff.
TO_B = [
    Reply(tool_calls=[ToolCall("calculator", {"expression": "6*7"}, id="calc")]),
    Reply(text="Passing you to B.", tool_calls=[ToolCall("transfer_to_b", id="hand")]),
    Reply(text="B here."),
]


async def define(client: httpx.AsyncClient) -> None:
    for agent in AGENTS:
        created = await client.post("/v1/agents", json=agent)
        assert created.status_code == 201, created.text


async def run(client: httpx.AsyncClient, agent_id: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/agents/{agent_id}/runs", json=body)
    assert response.status_code == 200, response.text
    output: dict[str, Any] = response.json()
    return output


def roles(request_body: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    """(role, content, carries tool calls) of each message the model was sent."""
    return [
        (m["role"], m.get("content"), bool(m.get("tool_calls"))) for m in request_body["messages"]
    ]


async def test_without_a_filter_the_next_agent_sees_the_tool_calls(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    fake.enqueue(*TO_B)
    async with over_http.client() as client:
        await define(client)
        output = await run(client, "root", input="What is 6*7?")
    assert output["status"] == "completed", output
    assert (output["content"], output["last_agent_id"]) == ("B here.", "b")
    to_b = fake.requests[-1].body
    assert to_b["model"] == "gpt-b"
    assert [tool["function"]["name"] for tool in to_b.get("tools", [])] == []
    assert roles(to_b) == [
        ("system", "You are B.", False),
        ("user", "What is 6*7?", False),
        ("assistant", None, True),
        ("tool", "42", False),
        ("assistant", "Passing you to B.", True),
        ("tool", '{"assistant":"b"}', False),
    ]


async def test_remove_tools_sends_the_next_agent_no_tool_messages(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    fake.enqueue(*TO_B)
    async with over_http.client() as client:
        await define(client)
        config = {"handoff_input_filter": "remove_tools"}
        output = await run(client, "root", input="What is 6*7?", run_config=config)
    assert output["status"] == "completed", output
    assert output["content"] == "B here."
    assert len(fake.requests) == 3
    assert sum(m["role"] == "tool" for m in fake.requests[1].body["messages"]) == 1
    assert roles(fake.requests[2].body) == [
        ("system", "You are B.", False),
        ("user", "What is 6*7?", False),
        ("assistant", "Passing you to B.", False),
    ]
    # The filtered conversation is the run's from then on.
    assert output["messages"] == [
        {"role": "user", "content": "What is 6*7?"},
        {"role": "assistant", "content": "Passing you to B."},
        {"role": "assistant", "content": "B here."},
    ]


async def test_last_user_message_sends_only_that(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    async with over_http.client() as client:
        await define(client)
        first = await run(client, "root", input="I am Ada.", session_id="s")
        assert first["status"] == "completed", first  # the fake echoed it
        fake.enqueue(*TO_B)
        config = {"handoff_input_filter": "last_user_message"}
        output = await run(client, "root", input="Sum?", session_id="s", run_config=config)
    assert output["status"] == "completed", output
    before, to_b = fake.requests[-2].body, fake.requests[-1].body
    assert roles(before)[:3] == [
        ("system", "Route.", False),
        ("user", "I am Ada.", False),
        ("assistant", "I am Ada.", False),
    ]
    assert roles(to_b) == [("system", "You are B.", False), ("user", "Sum?", False)]


async def test_a_tripped_input_guardrail_asks_no_model(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    async with over_http.client() as client:
        await define(client)
        config = {"input_guardrails": [{"type": "blocklist", "words": ["password"]}]}
        output = await run(client, "plain", input="my PASSWORD is x", run_config=config)
        passed = await run(client, "plain", input="hello", run_config=config)
    assert output["status"] == "error", output
    assert output["error"]["code"] == "input_guardrail_tripwire_triggered"
    assert passed["status"] == "completed", passed
    [only] = fake.requests  # the run that passed; the tripped one sent nothing
    assert roles(only.body) == [("user", "hello", False)]


async def test_an_output_guardrail_agent_judges_the_answer_it_was_sent(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    config = {"output_guardrails": [{"type": "agent", "agent_id": "judge"}]}
    fake.enqueue(Reply(text="The code is 1234."), Reply(text="Yes."))
    fake.enqueue(Reply(text="Hello."), Reply(text="no"))
    async with over_http.client() as client:
        await define(client)
        tripped = await run(client, "plain", input="Code?", run_config=config)
        passed = await run(client, "plain", input="Hi", run_config=config)
    assert tripped["status"] == "error", tripped
    assert tripped["error"]["code"] == "output_guardrail_tripwire_triggered"
    assert (passed["status"], passed["content"]) == ("completed", "Hello.")
    models = [request.body["model"] for request in fake.requests]
    assert models == ["gpt-plain", "gpt-judge", "gpt-plain", "gpt-judge"]
    assert roles(fake.requests[1].body) == [
        ("system", "Say yes to trip.", False),
        ("user", "The code is 1234.", False),
    ]
    assert roles(fake.requests[3].body)[-1] == ("user", "Hello.", False)
