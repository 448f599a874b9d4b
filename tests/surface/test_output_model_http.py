"""An output model over real HTTP: the main model's text streams as
RunIntermediateContent, the output model's as RunContent, from two requests."""

from __future__ import annotations

from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.script import Reply
from tests.runs.conftest import LiveServer
from tests.sse_client import collapsed, collect


async def test_the_output_model_writes_the_streamed_answer(
    over_http: LiveServer, fake: FakeOpenAIServer
) -> None:
    fake.enqueue(Reply(text="draft: it is sunny"), Reply(text="It is sunny today."))
    async with over_http.client() as client:
        agent = {
            "id": "w",
            "model": "openai:gpt-main",
            "output_model": "openai:gpt-writer",
            "output_model_prompt": "Write the final answer.",
        }
        assert (await client.post("/v1/agents", json=agent)).status_code == 201
        async with client.stream(
            "POST",
            "/v1/agents/w/runs",
            json={"input": "Weather?", "stream": True, "stream_events": True},
        ) as response:
            messages = await collect(response)
    names = [
        n
        for i, n in enumerate(collapsed(messages))
        if n != "RunIntermediateContent" or collapsed(messages)[i - 1] != n
    ]
    assert names == [
        "RunStarted",
        "RunIntermediateContent",
        "OutputModelResponseStarted",
        "RunContent",
        "OutputModelResponseCompleted",
        "RunContentCompleted",
        "RunCompleted",
    ]
    final = messages[-1].data
    assert final["content"] == "It is sunny today."
    assert final["metrics"]["model_calls"] == 2
    main, writer = fake.requests
    assert main.body["model"] == "gpt-main"
    assert writer.body["model"] == "gpt-writer"
    assert writer.body["messages"] == [
        {"role": "system", "content": "Write the final answer."},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "draft: it is sunny"},
    ]
