"""A run keeps its trace: continued after a pause (its state, with the trace,
stored meanwhile), each execution a root span under the caller's span, linked
to the execution before it."""

from __future__ import annotations

import httpx

from tests.fakes import FakeOpenAIServer, Reply, ToolCall
from tests.fakes.otlp_receiver import OTLPReceiver, is_root
from tests.tracing.conftest import create_agent, run

TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


async def test_a_run_continued_after_a_pause_stays_in_its_trace(
    traced: httpx.AsyncClient, receiver: OTLPReceiver, fake: FakeOpenAIServer
) -> None:
    await create_agent(traced, tools=[{"name": "current_time", "requires_confirmation": True}])
    fake.enqueue(Reply(tool_calls=[ToolCall("current_time", {}, id="ask")]), Reply(text="Done."))
    headers = {"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"}
    paused = await run(traced, headers=headers, run_config={"workflow_name": "Desk"})
    assert paused["status"] == "paused"
    run_id = paused["run_id"]
    first = await receiver.wait_run(run_id)
    response = await traced.post(
        f"/v1/runs/{run_id}/continue",
        json={"tools": [{"tool_call_id": "ask", "confirmed": True}]},
        # The continue's own trace context does not move the run to another trace.
        headers={"traceparent": f"00-{'c' * 32}-{'d' * 16}-01"},
    )
    assert response.json()["status"] == "completed"
    spans = await receiver.wait_run(run_id, executions=2)

    assert {span.trace_id for span in spans} == {TRACE}
    roots = sorted((span for span in spans if is_root(span)), key=lambda s: s.start_ns)
    assert [root.name for root in roots] == ["Desk", "Desk"]
    assert [root.parent_span_id for root in roots] == [CALLER_SPAN, CALLER_SPAN]
    assert [root.attributes["agentd.run.execution"] for root in roots] == ["start", "continue"]
    assert [root.attributes["agentd.run.status"] for root in roots] == ["paused", "completed"]
    assert roots[0].links == []
    assert roots[1].links == [(TRACE, roots[0].span_id, {"agentd.link": "previous_execution"})]
    # Before the pause: the agent and the call that asked; after it: the tool and the answer.
    assert sorted(s.name for s in first) == ["Desk", "chat gpt-4o-mini", "invoke_agent Helper"]
    second = [span for span in spans if span not in first]
    assert sorted(span.name for span in second) == [
        "Desk",
        "chat gpt-4o-mini",
        "execute_tool current_time",
        "invoke_agent Helper",
    ]
    agent = next(span for span in second if span.name == "invoke_agent Helper")
    assert agent.parent_span_id == roots[1].span_id
    assert {s.parent_span_id for s in second if s.name.startswith(("chat", "execute_tool"))} == {
        agent.span_id
    }
