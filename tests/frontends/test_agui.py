"""AG-UI driven by `@ag-ui/client`'s HttpAgent (node, tests/js/agui.mjs) against
a live agentd: text, tool calls, client tools and approvals as interrupts
answered with `resume`, reasoning, state, errors, a stream resumed after a
dropped connection, and a run cancelled through the native route."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.script import Reply
from tests.frontends.conftest import LOCATION_TOOL, node, wait_for_content
from tests.runs.conftest import LiveServer, wait_status
from tests.sse_client import iter_sse


def user(text: str, id: str = "m1") -> dict[str, Any]:
    return {"id": id, "role": "user", "content": text}


async def run_agui(js: Path, server: LiveServer, agent: str, **scenario: Any) -> dict[str, Any]:
    scenario.setdefault("threadId", "thread-1")
    scenario.setdefault("runId", "run-1")
    scenario.setdefault("messages", [user("Hello there")])
    return await node(js, "agui.mjs", {"url": f"{server.url}/v1/agents/{agent}/agui", **scenario})


def types(result: dict[str, Any]) -> list[str]:
    """Event types, with runs of content deltas as one."""
    out: list[str] = []
    for event in result["events"]:
        kind = event["type"]
        if not (kind.endswith("_CONTENT") and out and out[-1] == kind):
            out.append(kind)
    return out


def text_of(result: dict[str, Any], kind: str = "TEXT_MESSAGE_CONTENT") -> str:
    return "".join(event["delta"] for event in result["events"] if event["type"] == kind)


async def test_text_is_one_message_of_a_native_run(js_clients: Path, served: LiveServer) -> None:
    result = await run_agui(js_clients, served, "echo", messages=[user("Hello there friend")])
    assert result["error"] is None
    assert types(result) == [
        "RUN_STARTED",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
    ]
    started, finished = result["events"][0], result["events"][-1]
    assert (started["threadId"], started["runId"]) == ("thread-1", "run-1")
    assert finished["outcome"] == {"type": "success"}
    assert [(m["role"], m["content"]) for m in result["messages"]] == [
        ("user", "Hello there friend"),
        ("assistant", "Hello there friend"),
    ]
    async with served.client() as client:
        run = (await client.get("/v1/runs/run-1")).json()
    assert (run["status"], run["session_id"], run["content"]) == (
        "completed",
        "thread-1",
        "Hello there friend",
    )


async def test_the_conversation_context_and_props_reach_the_run(
    js_clients: Path, served: LiveServer, fake: FakeOpenAIServer
) -> None:
    fake.enqueue(Reply(text="first"), Reply(text="second"))
    await run_agui(js_clients, served, "gpt", runId="r1", messages=[user("one")])
    conversation = [
        user("one"),
        {"id": "a1", "role": "assistant", "content": "first"},
        user("two", id="m2"),
    ]
    result = await run_agui(
        js_clients,
        served,
        "gpt",
        runId="r2",
        messages=conversation,
        context=[{"description": "The user's name", "value": "Ann"}],
        forwardedProps={"page": "/cart"},
    )
    assert text_of(result) == "second"
    sent = [(m["role"], m["content"]) for m in fake.last_request.body["messages"]]
    # The client's conversation as it is: the thread's stored runs are not added again.
    assert sent == [
        ("system", "The user's name:\nAnn"),
        ("user", "one"),
        ("assistant", "first"),
        ("user", "two"),
    ]
    async with served.client() as client:
        run = (await client.get("/v1/runs/r2")).json()
    assert run["metadata"] == {"forwarded_props": {"page": "/cart"}}


async def test_a_tool_call_its_custom_event_and_the_state(
    js_clients: Path, served: LiveServer
) -> None:
    result = await run_agui(js_clients, served, "cart", state={"cart": ["apple"]})
    assert result["error"] is None
    assert types(result) == [
        "RUN_STARTED",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "CUSTOM",
        "TOOL_CALL_RESULT",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "STATE_SNAPSHOT",
        "RUN_FINISHED",
    ]
    by_type = {event["type"]: event for event in result["events"]}
    item = by_type["CUSTOM"]["value"]["items"][-1]
    assert by_type["TOOL_CALL_START"]["toolCallName"] == "add_to_cart"
    assert by_type["CUSTOM"] == {
        "type": "CUSTOM",
        "name": "cart_changed",
        "value": {"items": ["apple", item]},
    }
    assert by_type["TOOL_CALL_RESULT"]["content"] == "2 items in the cart"
    assert result["state"] == {"cart": ["apple", item]}
    assert text_of(result) == "Called 1 tools."


async def test_a_client_tool_interrupts_and_resume_answers_it(
    js_clients: Path, served: LiveServer
) -> None:
    first = await run_agui(js_clients, served, "tools", tools=[LOCATION_TOOL])
    assert types(first) == [
        "RUN_STARTED",
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "RUN_FINISHED",
    ]
    [pending] = first["pendingInterrupts"]
    call_id = first["events"][1]["toolCallId"]
    assert pending["id"] == pending["toolCallId"] == call_id
    assert pending["reason"] == "client_tool"
    assert first["events"][-1]["outcome"]["type"] == "interrupt"
    async with served.client() as client:
        assert (await client.get("/v1/runs/run-1")).json()["status"] == "paused"
    answer = {"interruptId": call_id, "status": "resolved", "payload": {"result": "Berlin"}}
    second = await run_agui(
        js_clients, served, "tools", runId="run-2", tools=[LOCATION_TOOL], resume=[answer]
    )
    assert second["error"] is None
    assert types(second) == [
        "RUN_STARTED",
        "TOOL_CALL_RESULT",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "STATE_SNAPSHOT",
        "RUN_FINISHED",
    ]
    assert second["events"][0]["metadata"] == {"agentd_run_id": "run-1"}
    assert second["events"][1]["content"] == "Berlin"
    assert second["events"][-1]["outcome"] == {"type": "success"}
    async with served.client() as client:
        run = (await client.get("/v1/runs/run-1")).json()
        assert (run["status"], run["content"]) == ("completed", "Called 1 tools.")
        again = await client.post(
            "/v1/agents/tools/agui",
            json={"threadId": "thread-1", "runId": "run-3", "messages": [], "resume": [answer]},
        )
    assert again.status_code == 409
    assert again.json()["code"] == "interrupt_not_pending"


async def test_an_approval_refused_through_resume(js_clients: Path, served: LiveServer) -> None:
    first = await run_agui(js_clients, served, "guarded", state={"cart": []})
    [pending] = first["pendingInterrupts"]
    assert pending["reason"] == "tool_approval"
    assert pending["responseSchema"]["required"] == ["confirmed"]
    refusal = {"confirmed": False, "note": "not today"}
    answer = {"interruptId": pending["id"], "status": "resolved", "payload": refusal}
    second = await run_agui(js_clients, served, "guarded", runId="run-2", resume=[answer])
    result = next(e for e in second["events"] if e["type"] == "TOOL_CALL_RESULT")
    assert "not today" in result["content"]
    snapshot = next(e for e in second["events"] if e["type"] == "STATE_SNAPSHOT")
    assert snapshot["snapshot"] == {"cart": []}  # the tool never ran
    assert second["events"][-1]["outcome"] == {"type": "success"}


async def test_a_tool_message_answers_a_client_tool(js_clients: Path, served: LiveServer) -> None:
    """CopilotKit's way: the client runs its tool and sends the result as a
    tool message in the next input."""
    first = await run_agui(js_clients, served, "tools", tools=[LOCATION_TOOL])
    call_id = first["events"][1]["toolCallId"]
    messages = [
        *first["messages"],
        {"id": "t1", "role": "tool", "toolCallId": call_id, "content": "Lisbon"},
    ]
    second = await run_agui(
        js_clients, served, "tools", runId="run-2", tools=[LOCATION_TOOL], messages=messages
    )
    assert second["error"] is None
    assert text_of(second) == "Called 1 tools."
    async with served.client() as client:
        run = (await client.get("/v1/runs/run-1")).json()
    assert run["status"] == "completed"
    assert run["tools"][0]["result"] == "Lisbon"


async def test_reasoning_streams_as_a_reasoning_message(
    js_clients: Path, served: LiveServer, fake: FakeOpenAIServer
) -> None:
    fake.enqueue(Reply(reasoning="Six times seven.", text="42"))
    result = await run_agui(js_clients, served, "gpt")
    assert types(result) == [
        "RUN_STARTED",
        "REASONING_START",
        "REASONING_MESSAGE_START",
        "REASONING_MESSAGE_CONTENT",
        "REASONING_MESSAGE_END",
        "REASONING_END",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
    ]
    assert text_of(result, "REASONING_MESSAGE_CONTENT") == "Six times seven."
    assert [(m["role"], m["content"]) for m in result["messages"][1:]] == [
        ("reasoning", "Six times seven."),
        ("assistant", "42"),
    ]


async def test_a_failed_run_ends_with_run_error(js_clients: Path, served: LiveServer) -> None:
    result = await run_agui(js_clients, served, "failing")
    assert types(result) == ["RUN_STARTED", "RUN_ERROR"]
    error = result["events"][-1]
    assert error["code"] == "model_provider_error"
    assert "the model is down" in error["message"]


async def test_a_dropped_stream_resumes_from_its_last_event_id(
    js_clients: Path, served: LiveServer
) -> None:
    words = "one two three four five six seven eight"
    body = {"threadId": "thread-1", "runId": "run-1", "messages": [user(words)]}
    result = await run_agui(js_clients, served, "slow", cutAfter=3, reconnect=True, **body)
    assert result["error"] is not None  # the connection dropped
    assert types(result) == ["RUN_STARTED", "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT"]
    resumed = result["resumed"]
    assert resumed["error"] is None
    # A fresh RUN_STARTED and the open message's start again, then only what came after.
    assert types(resumed) == [
        "RUN_STARTED",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
        "RUN_FINISHED",
    ]
    assert text_of(result) + text_of(resumed) == words
    assert [(m["role"], m["content"]) for m in result["messages"]] == [
        ("user", words),
        ("assistant", words),
    ]
    async with served.client() as client:
        ids = []
        everything = {"Last-Event-ID": "0"}
        async with client.stream(
            "POST", "/v1/agents/slow/agui", json=body, headers=everything
        ) as response:
            async for message in iter_sse_ids(response):
                ids.append(message)
        assert len(ids) == len(set(ids)) > 5  # the replay from the start: no id twice
        other = {**body, "messages": [user("something else")]}
        taken = await client.post("/v1/agents/slow/agui", json=other)
        assert (taken.status_code, taken.json()["code"]) == (409, "run_exists")
        done = await client.post(
            "/v1/agents/slow/agui", json=body, headers={"Last-Event-ID": ids[-1]}
        )
        assert done.status_code == 204
        middle = await client.post(
            "/v1/agents/slow/agui", json=body, headers={"Last-Event-ID": ids[-3]}
        )
    assert middle.status_code == 200
    # A fresh RUN_STARTED and the open message's start state where it resumed.
    frames = [line[4:] for line in middle.text.splitlines() if line.startswith("id: ")]
    assert frames == [ids[-3], ids[-3], ids[-2], ids[-1]]
    kinds = [line.split('"type":"')[1].split('"')[0] for line in middle.text.splitlines()[1::3]]
    assert kinds == ["RUN_STARTED", "TEXT_MESSAGE_START", "TEXT_MESSAGE_END", "RUN_FINISHED"]


async def iter_sse_ids(response: httpx.Response) -> Any:
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            yield line[4:]


async def test_a_run_started_through_agui_is_cancelled_through_the_native_route(
    js_clients: Path, served: LiveServer
) -> None:
    words = " ".join(f"w{i}" for i in range(200))
    client_run = asyncio.create_task(
        run_agui(js_clients, served, "slow", runId="agui-run", messages=[user(words)])
    )
    async with served.client() as client:
        await wait_status(client, "agui-run", {"running"}, within=20)
        await wait_for_content(client, "agui-run")
        cancelled = await client.post("/v1/runs/agui-run/cancel")
        assert cancelled.status_code == 202
        result = await client_run
        async with client.stream("GET", "/v1/runs/agui-run/events") as response:
            native = [message.event async for message in iter_sse(response)]
    assert types(result)[-2:] == ["TEXT_MESSAGE_END", "RUN_FINISHED"]
    assert result["events"][-1]["outcome"] == {"type": "cancelled"}
    assert native[0] == "RunStarted"
    assert native[-1] == "RunCancelled"


async def test_a_malformed_input_is_422_naming_the_field(served: LiveServer) -> None:
    good = {"threadId": "t", "runId": "r", "messages": [user("hi")]}
    cases = [
        ({**good, "threadId": None}, ["threadId"]),
        ({**good, "runId": "not an id!"}, ["runId"]),
        ({**good, "state": ["not", "an", "object"]}, ["state"]),
        ({**good, "messages": [{"id": "x", "role": "wizard", "content": "hi"}]}, ["messages", 0]),
        ({**good, "messages": []}, ["messages"]),
        ({**good, "resume": [{"interruptId": "c", "status": "resolved", "payload": 3}]}, None),
    ]
    async with served.client() as client:
        for body, loc in cases:
            response = await client.post("/v1/agents/echo/agui", json=body)
            assert response.status_code == 422, (body, response.text)
            problem = response.json()
            assert response.headers["content-type"] == "application/problem+json"
            assert problem["code"] == "validation_error"
            where = problem["errors"][0]["loc"]
            assert where[: len(loc)] == loc if loc else where[0] == "resume"
        assert (await client.get("/v1/runs")).json()["data"] == []
