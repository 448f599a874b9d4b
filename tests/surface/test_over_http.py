"""What an OpenAI-compatible model is sent when the run's features are on."""

from __future__ import annotations

from tests.fakes.openai_server import FakeOpenAIServer
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
