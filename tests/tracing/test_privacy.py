"""What a trace may hold: message contents, tool arguments and results only when
the server and the run allow it; nothing at all for a run with tracing disabled,
or on a server with tracing disabled."""

from __future__ import annotations

import httpx

from tests.fakes import FakeOpenAIServer, Reply, ToolCall
from tests.fakes.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.tracing.conftest import create_agent, run, started_app

SENSITIVE = {
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
}
SECRET = "my card is 4111"


def script(server: FakeOpenAIServer) -> None:
    """A tool that succeeds, one that fails, then an answer quoting the secret."""
    server.enqueue(
        Reply(
            tool_calls=[
                ToolCall("calculator", {"expression": "6*7"}, id="ok"),
                ToolCall("calculator", {"expression": "1/0"}, id="bad"),
            ]
        ),
        Reply(text=f"You said: {SECRET}"),
    )


def recorded(spans: list[ReceivedSpan]) -> set[str]:
    return {key for span in spans for key in span.attributes} & SENSITIVE


def leaks(spans: list[ReceivedSpan]) -> list[str]:
    """Every place the secret shows up in the spans."""
    return [
        f"{span.name}: {key}"
        for span in spans
        for key, value in [*span.attributes.items(), ("status", span.status_message)]
        if SECRET in str(value) or "6*7" in str(value)
    ]


async def test_sensitive_data_is_recorded_when_allowed(
    traced: httpx.AsyncClient, receiver: OTLPReceiver, fake: FakeOpenAIServer
) -> None:
    await create_agent(traced, tools=["calculator"])
    script(fake)
    output = await run(traced, input=SECRET)
    spans = await receiver.wait_run(output["run_id"])
    assert recorded(spans) == SENSITIVE
    assert leaks(spans)


async def test_a_run_can_keep_its_contents_out_of_the_trace(
    traced: httpx.AsyncClient, receiver: OTLPReceiver, fake: FakeOpenAIServer
) -> None:
    await create_agent(traced, tools=["calculator"])
    script(fake)
    output = await run(traced, input=SECRET, run_config={"trace_include_sensitive_data": False})
    assert output["content"] == f"You said: {SECRET}"
    spans = await receiver.wait_run(output["run_id"])
    assert recorded(spans) == set()
    assert leaks(spans) == []
    # The rest is still there: structure, usage, the failed tool's error type.
    names = sorted(span.name for span in spans)
    assert names.count("execute_tool calculator") == 2
    failed = next(s for s in spans if s.attributes.get("gen_ai.tool.call.id") == "bad")
    assert (failed.status, failed.attributes["error.type"]) == ("error", "tool_error")
    assert failed.status_message == ""  # a description may quote the arguments
    chats = [span for span in spans if span.name == "chat gpt-4o-mini"]
    assert all(span.attributes["gen_ai.usage.output_tokens"] == 5 for span in chats)


async def test_the_server_can_keep_contents_out_and_a_run_cannot_put_them_back(
    otel_env: dict[str, str],
    database_url: str,
    db_engine: object,
    receiver: OTLPReceiver,
    fake: FakeOpenAIServer,
) -> None:
    async with started_app(database_url, fake, trace_include_sensitive_data=False) as (
        _app,
        client,
    ):
        await create_agent(client, tools=["calculator"])
        script(fake)
        config = {"trace_include_sensitive_data": True}
        output = await run(client, input=SECRET, run_config=config)
        spans = await receiver.wait_run(output["run_id"])
    assert len(spans) == 6
    assert recorded(spans) == set()
    assert leaks(spans) == []


async def test_a_run_with_tracing_disabled_exports_nothing(
    traced: httpx.AsyncClient, receiver: OTLPReceiver, fake: FakeOpenAIServer
) -> None:
    await create_agent(traced, tools=["calculator"])
    script(fake)
    hidden = await run(traced, input=SECRET, run_config={"tracing_disabled": True})
    assert hidden["status"] == "completed"
    shown = await run(traced, input="hello")
    await receiver.wait_run(shown["run_id"])  # exported after everything the first ended
    assert receiver.of_run(hidden["run_id"]) == []
    assert leaks(receiver.spans) == []


async def test_a_server_with_tracing_disabled_traces_no_run(
    otel_env: dict[str, str],
    database_url: str,
    db_engine: object,
    receiver: OTLPReceiver,
    fake: FakeOpenAIServer,
) -> None:
    async with started_app(database_url, fake, tracing_disabled=True) as (app, client):
        assert not app.state.tracing.enabled
        await create_agent(client, model="test:echo")
        output = await run(client, run_config={"tracing_disabled": False, "trace_id": "b" * 32})
        assert output["status"] == "completed"
        metrics = (await client.get("/metrics")).text
    assert "agentd_trace_spans" not in metrics
    assert receiver.requests == 0
    assert receiver.spans == []
