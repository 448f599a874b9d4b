"""The Vercel AI SDK UI message stream driven by the `ai` package's chat client
(AbstractChat over DefaultChatTransport, node, tests/js/chat.mjs) against a
live agentd: text, tool calls and their data parts, approvals, client tools,
reasoning, errors, and re-attaching to a chat's active run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.script import Reply
from tests.frontends.conftest import node, wait_for_content
from tests.runs.conftest import LiveServer, wait_status


async def run_chat(
    js: Path, server: LiveServer, agent: str, steps: list[dict[str, Any]], **scenario: Any
) -> dict[str, Any]:
    scenario.setdefault("id", "chat-1")
    api = f"{server.url}/v1/agents/{agent}/chat"
    return await node(js, "chat.mjs", {"api": api, "steps": steps, **scenario})


def chunk_types(result: dict[str, Any]) -> list[str]:
    """Chunk types, with runs of deltas as one."""
    out: list[str] = []
    for chunk in result["chunks"]:
        kind = chunk["type"]
        if not (kind.endswith("-delta") and out and out[-1] == kind):
            out.append(kind)
    return out


def parts(message: dict[str, Any]) -> list[tuple[str, Any]]:
    """(type, state or text) of each part but step starts."""
    shown = []
    for part in message["parts"]:
        if part["type"] != "step-start":
            shown.append((part["type"], part.get("state") or part.get("text")))
    return shown


async def test_text_is_one_assistant_message(js_clients: Path, served: LiveServer) -> None:
    result = await run_chat(js_clients, served, "echo", [{"send": "Hello there friend"}])
    [step] = result["steps"]
    assert (step["status"], step["error"]) == ("ready", None)
    assert chunk_types(result) == [
        "start",
        "start-step",
        "text-start",
        "text-delta",
        "text-end",
        "finish-step",
        "finish",
    ]
    assert result["chunks"][-1] == {"type": "finish", "finishReason": "stop"}
    user, assistant = step["messages"]
    assert assistant["id"] == result["chunks"][0]["messageId"]
    assert parts(assistant) == [("text", "done")]
    assert assistant["parts"][-1]["text"] == "Hello there friend"
    async with served.client() as client:
        listed = (await client.get("/v1/runs", params={"session_id": "chat-1"})).json()["data"]
        stream = await client.post(
            "/v1/agents/echo/chat",
            json={"id": "chat-2", "messages": [user], "trigger": "submit-message"},
        )
    assert [(run["run_id"], run["status"]) for run in listed] == [(assistant["id"], "completed")]
    assert stream.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert stream.text.endswith("data: [DONE]\n\n")


async def test_a_tool_call_and_its_data_part(js_clients: Path, served: LiveServer) -> None:
    result = await run_chat(js_clients, served, "cart", [{"send": "Add a pear"}])
    assert chunk_types(result) == [
        "start",
        "start-step",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-available",
        "data-cart_changed",
        "tool-output-available",
        "finish-step",
        "start-step",
        "text-start",
        "text-delta",
        "text-end",
        "finish-step",
        "finish",
    ]
    assistant = result["steps"][0]["messages"][-1]
    assert parts(assistant) == [
        ("tool-add_to_cart", "output-available"),
        ("data-cart_changed", None),
        ("text", "done"),
    ]
    tool = assistant["parts"][1]
    assert tool["output"] == "1 items in the cart"
    assert assistant["parts"][2]["data"] == {"items": [tool["input"]["item"]]}


async def test_an_approval_requested_then_given(js_clients: Path, served: LiveServer) -> None:
    result = await run_chat(
        js_clients, served, "guarded", [{"send": "Add a pear"}, {"approve": True}]
    )
    asked, answered = result["steps"]
    assert asked["status"] == "ready"
    assert parts(asked["messages"][-1]) == [("tool-add_to_cart", "approval-requested")]
    request = next(c for c in result["chunks"] if c["type"] == "tool-approval-request")
    assert request["approvalId"] == request["toolCallId"]
    assert answered["error"] is None
    # The same assistant message goes on: the run continued, not a new one.
    assert [m["role"] for m in answered["messages"]] == ["user", "assistant"]
    assistant = answered["messages"][-1]
    assert parts(assistant) == [
        ("tool-add_to_cart", "output-available"),
        ("data-cart_changed", None),
        ("text", "done"),
    ]
    async with served.client() as client:
        runs = (await client.get("/v1/runs", params={"session_id": "chat-1"})).json()["data"]
    assert [(run["run_id"], run["status"]) for run in runs] == [(assistant["id"], "completed")]


async def test_an_approval_refused(js_clients: Path, served: LiveServer) -> None:
    result = await run_chat(
        js_clients,
        served,
        "guarded",
        [{"send": "Add a pear"}, {"approve": False, "reason": "not today"}],
    )
    assistant = result["steps"][-1]["messages"][-1]
    assert parts(assistant)[0] == ("tool-add_to_cart", "output-denied")
    assert "tool-output-denied" in chunk_types(result)
    async with served.client() as client:
        [run] = (await client.get("/v1/runs", params={"session_id": "chat-1"})).json()["data"]
        full = (await client.get(f"/v1/runs/{run['run_id']}")).json()
    assert full["tools"][0]["status"] == "rejected"


async def test_a_client_tool_answered_with_its_output(js_clients: Path, served: LiveServer) -> None:
    result = await run_chat(
        js_clients, served, "located", [{"send": "Where am I?"}, {"output": {"city": "Oslo"}}]
    )
    asked, answered = result["steps"]
    assert parts(asked["messages"][-1]) == [("tool-get_location", "input-available")]
    assert answered["error"] is None
    assistant = answered["messages"][-1]
    assert parts(assistant) == [("tool-get_location", "output-available"), ("text", "done")]
    assert assistant["parts"][-1]["text"] == "Called 1 tools."
    async with served.client() as client:
        [run] = (await client.get("/v1/runs", params={"session_id": "chat-1"})).json()["data"]
        full = (await client.get(f"/v1/runs/{run['run_id']}")).json()
    assert full["tools"][0]["result"] == {"city": "Oslo"}


async def test_reasoning_is_a_reasoning_part(
    js_clients: Path, served: LiveServer, fake: FakeOpenAIServer
) -> None:
    fake.enqueue(Reply(reasoning="Six times seven.", text="42"))
    result = await run_chat(js_clients, served, "gpt", [{"send": "Six times seven?"}])
    assert chunk_types(result)[:6] == [
        "start",
        "start-step",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "text-start",
    ]
    assistant = result["steps"][0]["messages"][-1]
    assert [(p["type"], p["text"]) for p in assistant["parts"] if "text" in p] == [
        ("reasoning", "Six times seven."),
        ("text", "42"),
    ]


async def test_a_failed_run_is_an_error(js_clients: Path, served: LiveServer) -> None:
    result = await run_chat(js_clients, served, "failing", [{"send": "Hello"}])
    [step] = result["steps"]
    assert step["status"] == "error"
    assert "the model is down" in step["error"]
    assert chunk_types(result) == ["start", "error"]  # the client stops reading at the error
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Hello"}]}
    async with served.client() as client:
        raw = await client.post("/v1/agents/failing/chat", json={"id": "c2", "messages": [message]})
    sent = [line[6:] for line in raw.text.splitlines() if line.startswith("data: ")]
    assert [line.split('"type":"')[1].split('"')[0] for line in sent[:-1]] == [
        "start",
        "error",
        "finish",
    ]
    assert sent[-1] == "[DONE]"


async def test_resume_reattaches_to_the_active_run(js_clients: Path, served: LiveServer) -> None:
    words = " ".join(f"w{i}" for i in range(120))
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": words}]}
    body = {"id": "chat-1", "messages": [message], "trigger": "submit-message"}
    async with served.client() as client:
        async with client.stream("POST", "/v1/agents/slow/chat", json=body) as response:
            async for _ in response.aiter_lines():
                break  # the page was closed mid-answer
        [run] = (await client.get("/v1/runs", params={"session_id": "chat-1"})).json()["data"]
        await wait_status(client, run["run_id"], {"running"})
        result = await run_chat(js_clients, served, "slow", [{"resume": True}], messages=[message])
        assistant = result["steps"][0]["messages"][-1]
        assert assistant["id"] == run["run_id"]
        assert parts(assistant) == [("text", "done")]
        assert assistant["parts"][-1]["text"] == words  # from its first part
        assert chunk_types(result)[0] == "start"
        nothing = await client.get("/v1/agents/slow/chat/chat-1/stream")
        unknown = await client.get("/v1/agents/slow/chat/no-such-chat/stream")
    assert (nothing.status_code, unknown.status_code) == (204, 204)
    idle = await run_chat(js_clients, served, "slow", [{"resume": True}], messages=[message])
    assert idle["steps"][0]["messages"] == [message] and idle["chunks"] == []


async def test_a_chat_run_is_cancelled_through_the_native_route(
    js_clients: Path, served: LiveServer
) -> None:
    words = " ".join(f"w{i}" for i in range(200))
    chat = asyncio.create_task(run_chat(js_clients, served, "slow", [{"send": words}]))
    async with served.client() as client:
        runs: list[dict[str, Any]] = []
        for _ in range(400):
            runs = (await client.get("/v1/runs")).json()["data"]
            if runs:
                break
            await asyncio.sleep(0.05)
        await wait_for_content(client, runs[0]["run_id"])
        assert (await client.post(f"/v1/runs/{runs[0]['run_id']}/cancel")).status_code == 202
    result = await chat
    assert chunk_types(result)[-2:] == ["text-end", "abort"]


async def test_malformed_ui_messages_are_422_naming_the_field(served: LiveServer) -> None:
    text = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    cases = [
        ({"messages": [text]}, ["id"]),
        ({"id": "c", "messages": []}, ["messages"]),
        ({"id": "c", "messages": [{**text, "role": "robot"}]}, ["messages", 0, "role"]),
        (
            {"id": "c", "messages": [{**text, "parts": [{"type": "text"}]}]},
            ["messages", 0, "parts", 0],
        ),
        (
            {"id": "c", "messages": [{**text, "parts": [{"type": "tool-x", "state": "nope"}]}]},
            ["messages", 0, "parts", 0],
        ),
        (
            {
                "id": "c",
                "messages": [
                    {**text, "parts": [{"type": "file", "mediaType": "text/csv", "url": "x"}]}
                ],
            },
            ["messages", 0, "parts", 0, "mediaType"],
        ),
        ({"id": "c", "messages": [{**text, "role": "assistant"}]}, ["messages"]),
    ]
    async with served.client() as client:
        for body, loc in cases:
            response = await client.post("/v1/agents/echo/chat", json=body)
            assert response.status_code == 422, (body, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["code"] == "validation_error"
            assert problem["errors"][0]["loc"][: len(loc)] == loc
        assert (await client.get("/v1/runs")).json()["data"] == []
