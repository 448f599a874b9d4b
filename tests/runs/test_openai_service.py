"""The whole service against an OpenAI-compatible server over real HTTP: what the
model receives (instructions, history, tools) and what the client gets back."""

from __future__ import annotations

import httpx

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.script import Reply, ToolCall, error_reply
from tests.runs.conftest import LiveServer
from tests.sse_client import collapsed, collect


async def test_history_and_instructions_reach_the_model(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    async with over_http.client() as client:
        await client.post(
            "/v1/agents",
            json={
                "id": "gpt",
                "model": "openai:gpt-test",
                "instructions": "Be brief.",
                "history": {"num_runs": 1},
            },
        )
        for text in ("one", "two", "three"):
            run = (
                await client.post("/v1/agents/gpt/runs", json={"input": text, "session_id": "h"})
            ).json()
            assert run["status"] == "completed", run
            assert run["content"] == text
    sent = fake.last_request.body
    assert sent["model"] == "gpt-test"
    assert "stream" not in sent  # a blocking run asks for whole answers
    assert fake.last_request.headers["authorization"] == "Bearer sk-test"
    contents = [(m["role"], m["content"]) for m in sent["messages"]]
    assert contents == [
        ("system", "Be brief."),
        ("user", "two"),
        ("assistant", "two"),
        ("user", "three"),
    ]


async def test_tool_round_trip_streamed(over_http: LiveServer, fake: FakeOpenAIServer) -> None:
    fake.enqueue(
        Reply(text="Checking. ", tool_calls=[ToolCall("calculator", {"expression": "6*7"})]),
        Reply(text="It is 42."),
    )
    async with over_http.client() as client:
        await client.post(
            "/v1/agents", json={"id": "calc", "model": "openai:gpt-test", "tools": ["calculator"]}
        )
        async with client.stream(
            "POST",
            "/v1/agents/calc/runs",
            json={"input": "6 times 7?", "stream": True, "stream_events": True},
        ) as response:
            messages = await collect(response)
    assert collapsed(messages) == [
        "RunStarted",
        "RunContent",
        "ToolCallStarted",
        "ToolCallCompleted",
        "RunContent",
        "RunContentCompleted",
        "RunCompleted",
    ]
    answer = [m.data["content"] for m in messages[4:] if m.event == "RunContent"]
    assert "".join(answer) == "It is 42."
    tool = next(m.data["tool"] for m in messages if m.event == "ToolCallCompleted")
    assert (tool["tool_name"], tool["tool_args"], tool["status"]) == (
        "calculator",
        {"expression": "6*7"},
        "completed",
    )
    final = messages[-1].data
    assert final["metrics"]["model_calls"] == 2
    assert final["metrics"]["input_tokens"] == 20
    second = fake.requests[-1].body["messages"]
    assert second[-1]["role"] == "tool" and "42" in second[-1]["content"]


async def test_only_runs_someone_watches_stream_from_the_model(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    """A blocking run asks for whole answers (as the Agents SDK's `Runner.run` and
    Agno's non-streaming `run` do); streams and background runs stream; a continue
    decides again by its own options."""
    async with over_http.client() as client:
        await client.post("/v1/agents", json={"id": "gpt", "model": "openai:gpt-test"})
        await client.post(
            "/v1/agents",
            json={
                "id": "ask",
                "model": "openai:gpt-test",
                "tools": [{"name": "current_time", "requires_confirmation": True}],
            },
        )
        blocking = (await client.post("/v1/agents/gpt/runs", json={"input": "one two"})).json()
        assert blocking["content"] == "one two"
        assert "stream" not in fake.last_request.body
        events = (
            await client.get(f"/v1/runs/{blocking['run_id']}/events", params={"after": 0})
        ).text
        assert events.count("event: RunContent\n") == 1  # the whole answer, once
        async with client.stream(
            "POST", "/v1/agents/gpt/runs", json={"input": "three four", "stream": True}
        ) as response:
            streamed = await collect(response)
        assert "".join(m.data["content"] for m in streamed if m.event == "RunContent") == (
            "three four"
        )
        assert fake.last_request.body["stream"] is True
        assert fake.last_request.body["stream_options"] == {"include_usage": True}
        accepted = await client.post(
            "/v1/agents/gpt/runs", json={"input": "five", "background": True}
        )
        async with client.stream("GET", f"/v1/runs/{accepted.json()['run_id']}/events") as tail:
            await collect(tail)
        assert fake.last_request.body["stream"] is True

        fake.enqueue(Reply(tool_calls=[ToolCall("current_time", {})]), Reply(text="Noon."))
        async with client.stream(
            "POST", "/v1/agents/ask/runs", json={"input": "time?", "stream": True}
        ) as response:
            paused = (await collect(response))[-1]
        assert paused.event == "RunPaused", paused
        assert fake.last_request.body["stream"] is True
        call_id = paused.data["requirements"][0]["tool_call_id"]
        done = (
            await client.post(
                f"/v1/runs/{paused.data['run_id']}/continue",
                json={"tools": [{"tool_call_id": call_id, "confirmed": True}]},
            )
        ).json()
    assert done["status"] == "completed", done
    assert done["content"] == "Noon."
    assert "stream" not in fake.last_request.body


async def test_provider_failure_is_a_run_error(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    fake.enqueue(error_reply(500, "upstream down"), error_reply(500, "upstream down"))
    async with over_http.client() as client:
        await client.post("/v1/agents", json={"id": "gpt", "model": "openai:gpt-test"})
        run = (await client.post("/v1/agents/gpt/runs", json={"input": "hi"})).json()
    assert run["status"] == "error"
    assert run["error"]["code"] == "model_provider_error"
    assert "sk-test" not in run["error"]["message"]
    assert len(fake.requests) == 2  # one retry, then the error


async def test_client_gets_problem_for_unknown_agent(over_http: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=over_http.url) as client:
        response = await client.post("/v1/agents/none/runs", json={"input": "x"})
    assert response.status_code == 404
