"""The work after the answer failing over real HTTP (the fake OpenAI-compatible
server answering 500 for the memory or summary model): the run completes with its
answer, the failure is logged with the run's id and said in the event."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.script import Reply, error_reply
from tests.runs.conftest import LiveServer
from tests.sse_client import collapsed, collect

DOWN = [error_reply(500, "memory model down"), error_reply(500, "memory model down")]


async def streamed(client: httpx.AsyncClient, agent_id: str, **body: Any) -> list[Any]:
    """The run's events, streamed (every event)."""
    body |= {"stream": True, "stream_events": True}
    async with client.stream("POST", f"/v1/agents/{agent_id}/runs", json=body) as response:
        assert response.status_code == 200
        return await collect(response)


async def test_a_failing_memory_model_leaves_the_run_completed(
    over_http: LiveServer, fake: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    agent = {
        "id": "m",
        "model": "openai:gpt-main",
        "memory": {"enabled": True, "model": "openai:gpt-memory"},
        "session_summary": {"enabled": True, "model": "test:echo"},
    }
    fake.enqueue(Reply(text="Hello Ada."), *DOWN)
    with caplog.at_level(logging.WARNING):
        async with over_http.client() as client:
            assert (await client.post("/v1/agents", json=agent)).status_code == 201
            events = await streamed(client, "m", input="I am Ada", user_id="ada", session_id="s")
            memories = (await client.get("/v1/memories", params={"user_id": "ada"})).json()
            run_id = events[0].data["run_id"]
            run = (await client.get(f"/v1/runs/{run_id}")).json()
    assert collapsed(events) == [
        "RunStarted",
        "RunContent",
        "RunContentCompleted",
        "MemoryUpdateStarted",
        "MemoryUpdateCompleted",
        "SessionSummaryStarted",
        "SessionSummaryCompleted",
        "RunCompleted",
    ]
    completed = events[4].data
    assert completed["memories"] == [] and completed["deleted_memory_ids"] == []
    assert completed["error"]["code"] == "model_provider_error"
    assert "memory model down" in completed["error"]["message"]
    assert events[6].data["error"] is None  # the summary went on
    assert (run["status"], run["content"], run["error"]) == ("completed", "Hello Ada.", None)
    assert events[-1].data["status"] == "completed"
    assert memories["data"] == []
    assert [r.body["model"] for r in fake.requests] == ["gpt-main", "gpt-memory", "gpt-memory"]
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(run_id in m and "memory update failed" in m for m in logged), logged


async def test_a_failing_summary_model_leaves_the_summary_as_it_was(
    over_http: LiveServer, fake: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    agent = {
        "id": "s",
        "model": "openai:gpt-main",
        "session_summary": {"enabled": True, "model": "openai:gpt-summary"},
    }
    fake.enqueue(Reply(text="One."), Reply(text="Ada counted to one."))
    fake.enqueue(Reply(text="Two."), *DOWN)
    with caplog.at_level(logging.WARNING):
        async with over_http.client() as client:
            assert (await client.post("/v1/agents", json=agent)).status_code == 201
            await streamed(client, "s", input="Count", session_id="c")
            events = await streamed(client, "s", input="Again", session_id="c")
            session = (await client.get("/v1/sessions/c")).json()
    assert collapsed(events)[-4:] == [
        "RunContentCompleted",
        "SessionSummaryStarted",
        "SessionSummaryCompleted",
        "RunCompleted",
    ]
    summary = events[-2].data
    assert summary["error"]["code"] == "model_provider_error"
    assert summary["session_summary"]["summary"] == "Ada counted to one."
    assert session["summary"]["summary"] == "Ada counted to one."
    assert (events[-1].data["status"], events[-1].data["content"]) == ("completed", "Two.")
    run_id = events[0].data["run_id"]
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(run_id in m and "session summary failed" in m for m in logged), logged
