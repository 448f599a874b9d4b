"""The memory update across real replicas: a worker that dies after the answer was
stored, in the middle of the memory model's call, leaves the update to another
replica, which runs it once: one memory stored, every event once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.script import Reply, ToolCall
from tests.replicas.conftest import Cluster, Replica
from tests.replicas.test_replicas import assert_gap_free, follow_to_end
from tests.sse_client import SSEMessage, iter_sse

AGENT = {
    "id": "remembers",
    "model": "openai:gpt-main",
    "memory": {"enabled": True, "model": "openai:gpt-memory"},
}
ADD = Reply(tool_calls=[ToolCall("add_memory", {"memory": "Lives in Oslo"}, id="m1")])


class FirstMemoryCallHeld(FakeOpenAIServer):
    """Holds the first memory-model request until the test is done with it; it is
    then answered 503 (whoever made it is gone by then)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def _handle(self, request: Request) -> Response:
        body = await request.json()
        if body.get("model") == "gpt-memory" and not self.arrived.is_set():
            self.arrived.set()
            await self.release.wait()
            return Response(b"{}", 503, media_type="application/json")
        return await super()._handle(request)


@pytest.fixture
async def held() -> AsyncIterator[FirstMemoryCallHeld]:
    server = FirstMemoryCallHeld()
    async with server:
        yield server
        server.release.set()


async def kill_during_memory_call(
    owner: Replica, watcher: Replica, fake: FirstMemoryCallHeld, run_id: str
) -> list[SSEMessage]:
    """Watch from `watcher`; SIGKILL `owner` while its memory-model call is held."""
    messages: list[SSEMessage] = []
    async with (
        watcher.client() as client,
        client.stream("GET", f"/v1/runs/{run_id}/events") as response,
    ):
        async for message in iter_sse(response):
            messages.append(message)
            if message.event == "MemoryUpdateStarted":
                break
    await asyncio.wait_for(fake.arrived.wait(), timeout=20)
    owner.kill()
    await owner.wait()
    return messages


async def test_a_crash_in_the_memory_update_resumes_it_once_elsewhere(
    pg_cluster: Cluster, held: FirstMemoryCallHeld
) -> None:
    model = {"OPENAI_BASE_URL": held.base_url, "OPENAI_API_KEY": "sk-test"}
    a = await pg_cluster.add(MODEL_MAX_RETRIES="0", **model)
    b = await pg_cluster.add(MODEL_MAX_RETRIES="0", **model)
    held.enqueue(Reply(text="Noted."), ADD)
    async with a.client() as client:
        assert (await client.post("/v1/agents", json=AGENT)).status_code == 201
        response = await client.post(
            "/v1/agents/remembers/runs",
            json={"input": "I live in Oslo", "user_id": "ada", "background": True},
        )
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]
    before = await kill_during_memory_call(a, b, held, run_id)
    rest = await follow_to_end(b, run_id, before[-1].id or 0)
    everything = before + rest
    assert_gap_free(everything)
    names = [m.event for m in everything]
    assert names[-1] == "RunCompleted"
    repeated = [n for n, count in Counter(names).items() if count > 1 and n != "RunContent"]
    assert repeated == [], names
    assert names.index("RunContentCompleted") < names.index("MemoryUpdateStarted")
    assert "RunContinued" in names[names.index("MemoryUpdateStarted") :]
    [completed] = [m.data for m in everything if m.event == "MemoryUpdateCompleted"]
    assert completed["error"] is None
    assert [m["memory"] for m in completed["memories"]] == ["Lives in Oslo"]
    answer = "".join(m.data["content"] for m in everything if m.event == "RunContent")
    assert answer == "Noted."
    async with b.client() as client:
        memories = (await client.get("/v1/memories", params={"user_id": "ada"})).json()["data"]
        run = (await client.get(f"/v1/runs/{run_id}")).json()
    assert [m["memory"] for m in memories] == ["Lives in Oslo"]
    assert (run["status"], run["content"]) == ("completed", "Noted.")
    # The answer was asked for once; the memory model again after the crash.
    assert [r.body["model"] for r in held.requests] == ["gpt-main", "gpt-memory"]
