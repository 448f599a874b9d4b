"""What an OpenAI-compatible model is sent when the run's features are on."""

from __future__ import annotations

import base64

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import snapshot
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.script import Reply
from tests.runs.conftest import LiveServer


async def test_the_model_gets_the_redacted_input(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    async with over_http.client() as client:
        agent = {"id": "p", "model": "openai:gpt-test", "pre_hooks": ["pii_redaction"]}
        assert (await client.post("/v1/agents", json=agent)).status_code == 201
        text = "I am jo@x.example, card 4242 4242 4242 4242, phone +1 (415) 555-0100"
        run = (await client.post("/v1/agents/p/runs", json={"input": text})).json()
    assert run["status"] == "completed", run
    sent = fake.last_request.body["messages"]
    assert sent == [{"role": "user", "content": "I am [EMAIL], card [CARD], phone [PHONE]"}]


async def test_memories_reach_the_system_message(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    async with over_http.client() as client:
        agent = {
            "id": "m",
            "model": "openai:gpt-test",
            "instructions": "Be brief.",
            "memory": {"enabled": True},
        }
        assert (await client.post("/v1/agents", json=agent)).status_code == 201
        await client.post("/v1/memories", json={"user_id": "u", "memory": "Lives in Oslo"})
        run = (
            await client.post("/v1/agents/m/runs", json={"input": "Weather?", "user_id": "u"})
        ).json()
    assert run["status"] == "completed", run
    agent_call, memory_call = fake.requests
    system = agent_call.body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith("Be brief.\n\n")
    assert "- Lives in Oslo\n" in system["content"]
    assert [t["function"]["name"] for t in memory_call.body["tools"]] == [
        "add_memory",
        "update_memory",
        "delete_memory",
    ]
    assert memory_call.body["messages"][-1] == {"role": "user", "content": "Weather?"}
    assert "] Lives in Oslo" in memory_call.body["messages"][0]["content"]


async def test_the_summary_reaches_later_runs(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    async with over_http.client() as client:
        agent = {
            "id": "s",
            "model": "openai:gpt-test",
            "session_summary": {"enabled": True, "model": "test:echo"},
        }
        assert (await client.post("/v1/agents", json=agent)).status_code == 201
        for text in ("I am Ada", "Hello again"):
            body = {"input": text, "session_id": "chat"}
            run = (await client.post("/v1/agents/s/runs", json=body)).json()
            assert run["status"] == "completed", run
    system = fake.last_request.body["messages"][0]
    assert system["role"] == "system"
    assert "<summary_of_previous_interactions>\nI am Ada\n" in system["content"]
    assert len(fake.requests) == 2  # the summaries came from the test model


async def test_parser_model_over_http(over_http: LiveServer, fake: FakeOpenAIServer) -> None:
    fake.enqueue(Reply(text="Somewhere in Norway: Oslo."), Reply(text='{"city": "Oslo"}'))
    schema = {
        "title": "City",
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    async with over_http.client() as client:
        agent = {
            "id": "p",
            "model": "openai:gpt-test",
            "output_schema": schema,
            "parser_model": "openai:gpt-parse",
        }
        assert (await client.post("/v1/agents", json=agent)).status_code == 201
        run = (await client.post("/v1/agents/p/runs", json={"input": "Where?"})).json()
    assert run["status"] == "completed", run
    assert (run["content"], run["content_type"]) == ({"city": "Oslo"}, "City")
    main, parser = fake.requests
    assert "response_format" not in main.body
    assert parser.body["model"] == "gpt-parse"
    assert parser.body["response_format"]["type"] == "json_schema"
    assert parser.body["messages"][-1] == {
        "role": "user",
        "content": "Somewhere in Norway: Oslo.",
    }


async def test_media_parts_over_http(
    over_http: LiveServer, fake: FakeOpenAIServer, db_engine: AsyncEngine
) -> None:
    wav = base64.b64encode(b"RIFF....WAVE").decode()
    pdf = base64.b64encode(b"%PDF-1.4").decode()
    async with over_http.client() as client:
        assert (
            await client.post("/v1/agents", json={"id": "v", "model": "openai:gpt-test"})
        ).status_code == 201
        body = {
            "input": "Listen and read",
            "audio": [{"content": wav, "mime_type": "audio/wav"}],
            "files": [{"content": pdf, "mime_type": "application/pdf", "filename": "a.pdf"}],
        }
        run = (await client.post("/v1/agents/v/runs", json=body)).json()
        assert run["status"] == "completed", run
        assert fake.last_request.body["messages"][0]["content"] == [
            {"type": "text", "text": "Listen and read"},
            {"type": "input_audio", "input_audio": {"data": wav, "format": "wav"}},
            {
                "type": "file",
                "file": {"file_data": f"data:application/pdf;base64,{pdf}", "filename": "a.pdf"},
            },
        ]

        before = await snapshot(db_engine)
        requests = len(fake.requests)
        refused = await client.post(
            "/v1/agents/v/runs",
            json={"input": "Watch", "video": [{"url": "https://example.com/v.mp4"}]},
        )
        assert refused.status_code == 422
        problem = refused.json()
        assert problem["code"] == "unsupported_media"
        assert [e["msg"] for e in problem["errors"]] == ["openai:gpt-test cannot take video input"]
        assert await snapshot(db_engine) == before
        assert len(fake.requests) == requests
