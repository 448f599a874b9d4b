"""Streaming over a real uvicorn: SSE framing, replay with Last-Event-ID,
disconnects, and many concurrent streams."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.conftest import make_settings
from tests.runs.conftest import SLOW, LiveServer, make_agent, serving, wait_status
from tests.sse_client import SSEMessage, collapsed, collect, iter_sse, names

WORDS = "one two three four five six seven eight"


async def stream_run(http: httpx.AsyncClient, body: dict[str, object]) -> list[SSEMessage]:
    """Run the echo agent with `stream: true` and read its stream to the end."""
    async with http.stream(
        "POST", "/v1/agents/echo/runs", json={**body, "stream": True}
    ) as response:
        return await collect(response)


async def test_stream_events_full_sequence(http: httpx.AsyncClient) -> None:
    await make_agent(http)
    async with http.stream(
        "POST",
        "/v1/agents/echo/runs",
        json={"input": "alpha beta gamma", "stream": True, "stream_events": True},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["cache-control"] == "no-store"
        messages = await collect(response)
    assert collapsed(messages) == [
        "RunStarted",
        "RunContent",
        "RunContentCompleted",
        "RunCompleted",
    ]
    assert [m.id for m in messages] == list(range(1, len(messages) + 1))
    assert all(m.data["seq"] == m.id and m.data["event"] == m.event for m in messages)
    assert "".join(m.data["content"] for m in messages if m.event == "RunContent") == (
        "alpha beta gamma"
    )
    completed = messages[-1].data
    assert completed["status"] == "completed"
    assert completed["content"] == "alpha beta gamma"


async def test_stream_without_events_sends_content_and_end(http: httpx.AsyncClient) -> None:
    await make_agent(http)
    messages = await stream_run(http, {"input": "a b"})
    assert collapsed(messages) == ["RunContent", "RunCompleted"]
    ids = [m.id for m in messages]  # RunStarted (1) and RunContentCompleted are not sent
    assert ids[0] == 2 and ids == sorted(ids) and ids[-1] == ids[-2] + 2
    assert "".join(m.data["content"] for m in messages[:-1]) == "a b"


async def test_deltas_apart_in_time_stay_apart(http: httpx.AsyncClient) -> None:
    """Merging only joins deltas that wait for the same write (<= 20 ms): a model
    that streams slowly is relayed delta by delta."""
    await make_agent(http, model_settings=SLOW)  # 50 ms between deltas
    messages = await stream_run(http, {"input": "alpha beta gamma"})
    contents = [m.data["content"] for m in messages if m.event == "RunContent"]
    assert len(contents) >= 2
    assert "".join(contents) == "alpha beta gamma"


async def test_events_replay_after_the_run_ended(http: httpx.AsyncClient) -> None:
    await make_agent(http)
    run = (await http.post("/v1/agents/echo/runs", json={"input": "x y z"})).json()
    async with http.stream("GET", f"/v1/runs/{run['run_id']}/events") as response:
        everything = await collect(response)
    assert [m.id for m in everything] == list(range(1, len(everything) + 1))
    assert everything[-1].event == "RunCompleted"
    headers = {"Last-Event-ID": "3"}
    async with http.stream("GET", f"/v1/runs/{run['run_id']}/events", headers=headers) as response:
        rest = await collect(response)
    assert [m.id for m in rest] == list(range(4, len(everything) + 1))
    async with http.stream("GET", f"/v1/runs/{run['run_id']}/events?after=4") as response:
        assert [m.id for m in await collect(response)] == list(range(5, len(everything) + 1))


async def test_a_last_event_id_past_any_seq_ends_the_stream_cleanly(
    http: httpx.AsyncClient,
) -> None:
    """Beyond what the seq column holds (it failed in the database before): the
    run has ended and nothing is after that point, so 204."""
    await make_agent(http)
    run = (await http.post("/v1/agents/echo/runs", json={"input": "x"})).json()
    for value in ("99999999999999999999999999", "2147483648", str(2**63)):
        headers = {"Last-Event-ID": value}
        url = f"/v1/runs/{run['run_id']}/events"
        async with http.stream("GET", url, headers=headers) as response:
            assert response.status_code == 204
            assert await response.aread() == b""


async def test_resume_mid_run_with_last_event_id(http: httpx.AsyncClient) -> None:
    await make_agent(http, model_settings=SLOW)
    accepted = (
        await http.post("/v1/agents/echo/runs", json={"input": WORDS, "background": True})
    ).json()
    run_id = accepted["run_id"]
    seen: list[int] = []
    async with http.stream("GET", f"/v1/runs/{run_id}/events") as response:
        async for message in iter_sse(response):
            assert message.id is not None
            seen.append(message.id)
            if len(seen) == 3:
                break  # the client drops the connection mid-run
    status = (await http.get(f"/v1/runs/{run_id}")).json()["status"]
    assert status == "running"
    async with http.stream(
        "GET", f"/v1/runs/{run_id}/events", headers={"Last-Event-ID": str(seen[-1])}
    ) as response:
        rest = await collect(response)
    ids = seen + [m.id for m in rest if m.id is not None]
    assert ids == list(range(1, len(ids) + 1))
    assert rest[-1].event == "RunCompleted"
    words = [m.data["content"] for m in rest if m.event == "RunContent"]
    assert len(words) < len(WORDS.split())  # part of the answer came before the drop


async def test_disconnect_mid_stream_run_still_completes(http: httpx.AsyncClient) -> None:
    await make_agent(http, model_settings=SLOW)
    run_id = None
    async with http.stream(
        "POST", "/v1/agents/echo/runs", json={"input": WORDS, "stream": True, "stream_events": True}
    ) as response:
        async for message in iter_sse(response):
            run_id = message.data["run_id"]
            if message.event == "RunContent":
                break
    assert run_id is not None
    run = await wait_status(http, run_id, {"completed", "error", "cancelled"})
    assert run["status"] == "completed"
    assert run["content"] == WORDS


async def test_disconnect_with_on_disconnect_cancel(http: httpx.AsyncClient) -> None:
    await make_agent(http, model_settings=SLOW)
    run_id = None
    body = {"input": WORDS, "stream": True, "stream_events": True, "on_disconnect": "cancel"}
    async with http.stream("POST", "/v1/agents/echo/runs", json=body) as response:
        async for message in iter_sse(response):
            run_id = message.data["run_id"]
            if message.event == "RunContent":
                break
    assert run_id is not None
    run = await wait_status(http, run_id, {"completed", "error", "cancelled"})
    assert run["status"] == "cancelled"


async def test_fifty_concurrent_streams(live: LiveServer) -> None:
    limits = httpx.Limits(max_connections=100)
    async with live.client(limits=limits) as client:
        await make_agent(client, model_settings={"chunk_delay": 0.01})

        async def one(index: int) -> tuple[str, list[int]]:
            text = f"run {index} says hello"
            async with client.stream(
                "POST",
                "/v1/agents/echo/runs",
                json={"input": text, "stream": True, "stream_events": True},
            ) as response:
                messages = await collect(response)
            assert messages[-1].event == "RunCompleted", names(messages)
            assert messages[-1].data["content"] == text
            content = "".join(m.data["content"] for m in messages if m.event == "RunContent")
            return content, [m.id for m in messages if m.id is not None]

        results = await asyncio.gather(*(one(index) for index in range(50)))
    for index, (content, ids) in enumerate(results):
        assert content == f"run {index} says hello"
        assert ids == list(range(1, len(ids) + 1))


async def test_an_idle_stream_gets_a_ping_comment(database_url: str, db_engine: object) -> None:
    """A stream with nothing to send for SSE_PING_SECONDS gets `: ping` (proxies close
    idle connections); the events around the pings arrive intact."""
    async with (
        serving(make_settings(database_url, sse_ping_seconds=0.1)) as server,
        server.client() as client,
    ):
        await make_agent(client, model_settings={"chunk_delay": 0.4})
        async with client.stream(
            "POST", "/v1/agents/echo/runs", json={"input": "alpha beta gamma", "stream": True}
        ) as response:
            lines = [line async for line in response.aiter_lines()]
    comments = [line for line in lines if line.startswith(":")]
    assert len(comments) >= 4, lines  # ~0.8 s between the first and the last delta
    assert set(comments) == {": ping"}
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event:")]
    assert events[-1] == "RunCompleted"
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data:")]
    assert "".join(d["content"] for d in data if d["event"] == "RunContent") == "alpha beta gamma"


async def test_a_busy_stream_gets_no_ping(database_url: str, db_engine: object) -> None:
    """Pings fill silences only: deltas 50 ms apart with a 0.3 s ping interval."""
    async with (
        serving(make_settings(database_url, sse_ping_seconds=0.3)) as server,
        server.client() as client,
    ):
        await make_agent(client, model_settings=SLOW)
        async with client.stream(
            "POST", "/v1/agents/echo/runs", json={"input": WORDS, "stream": True}
        ) as response:
            text = (await response.aread()).decode()
    assert "event: RunCompleted" in text
    assert ": ping" not in text


async def test_stored_output_is_the_completed_event(http: httpx.AsyncClient) -> None:
    """The run row keeps the output the RunCompleted event carried."""
    await make_agent(http)
    messages = await stream_run(http, {"input": "alpha beta"})
    completed = dict(messages[-1].data)
    assert completed.pop("event") == "RunCompleted"
    assert completed.pop("seq") == messages[-1].id
    stored = (await http.get(f"/v1/runs/{completed['run_id']}")).json()
    assert stored["updated_at"] >= completed.pop("updated_at")
    stored.pop("updated_at")
    assert stored == completed
    assert completed["metrics"]["model_calls"] == 1
    assert [m["role"] for m in completed["messages"]] == ["user", "assistant"]
