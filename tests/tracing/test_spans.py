"""The spans of a run, as a collector receives them: names after the GenAI
semantic conventions, parent-child structure, and attributes."""

from __future__ import annotations

import json

import httpx

from tests.fakes import FakeOpenAIServer, Reply, ToolCall
from tests.fakes.otlp_receiver import OTLPReceiver, ReceivedSpan
from tests.tracing.conftest import create_agent, run


def one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


def named(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return sorted((span for span in spans if span.name == name), key=lambda s: s.start_ns)


async def test_a_run_with_a_tool_is_a_tree_of_genai_spans(
    traced: httpx.AsyncClient, receiver: OTLPReceiver, fake: FakeOpenAIServer
) -> None:
    await create_agent(traced, tools=["current_time"], description="Tells the time.")
    fake.enqueue(
        Reply(tool_calls=[ToolCall("current_time", {}, id="call_t")], usage=(12, 3)),
        Reply(text="It is noon.", usage=(20, 4)),
    )
    output = await run(
        traced, session_id="s-1", run_config={"model_settings": {"temperature": 0.3}}
    )
    assert output["status"] == "completed"
    spans = await receiver.wait_run(output["run_id"])

    assert sorted(span.name for span in spans) == [
        "Agent workflow",
        "chat gpt-4o-mini",
        "chat gpt-4o-mini",
        "execute_tool current_time",
        "invoke_agent Helper",
    ]
    root = one(spans, "Agent workflow")
    agent = one(spans, "invoke_agent Helper")
    first, second = named(spans, "chat gpt-4o-mini")
    tool = one(spans, "execute_tool current_time")
    assert root.parent_span_id == ""
    assert agent.parent_span_id == root.span_id
    assert {first.parent_span_id, second.parent_span_id, tool.parent_span_id} == {agent.span_id}
    assert len({span.trace_id for span in spans}) == 1
    assert first.end_ns <= tool.start_ns and tool.end_ns <= second.start_ns
    assert root.start_ns <= agent.start_ns and agent.end_ns <= root.end_ns

    for span in spans:
        assert span.attributes["agentd.run_id"] == output["run_id"]
        assert span.attributes["gen_ai.conversation.id"] == "s-1"
        assert span.resource["service.name"] == "agentd-test"
        assert span.scope == "agentd"
        assert span.status == "unset"
    assert root.kind == agent.kind == tool.kind == "internal"
    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["agentd.run.status"] == "completed"
    assert root.attributes["agentd.run.execution"] == "start"
    assert agent.attributes == agent.attributes | {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.agent.name": "Helper",
        "gen_ai.agent.id": "helper",
        "gen_ai.agent.version": "1",
        "gen_ai.agent.description": "Tells the time.",
    }
    assert first.kind == second.kind == "client"
    assert first.attributes == first.attributes | {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.3,
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.response.finish_reasons": ["tool_calls"],
    }
    assert second.attributes["gen_ai.usage.input_tokens"] == 20
    assert second.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert tool.attributes == tool.attributes | {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "current_time",
        "gen_ai.tool.call.id": "call_t",
        "gen_ai.tool.type": "function",
    }
    assert "agentd.tool.status" not in tool.attributes  # only when it did not complete
    # Sensitive data is recorded by default, in the conventions' message shape.
    sent = json.loads(second.attributes["gen_ai.input.messages"])
    assert sent[0] == {"role": "user", "parts": [{"type": "text", "content": "What time is it?"}]}
    assert sent[1]["parts"] == [
        {"type": "tool_call", "id": "call_t", "name": "current_time", "arguments": {}}
    ]
    assert sent[2]["role"] == "tool" and sent[2]["parts"][0]["id"] == "call_t"
    answer = json.loads(second.attributes["gen_ai.output.messages"])
    assert answer == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "It is noon."}],
            "finish_reason": "stop",
        }
    ]
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {}
    assert tool.attributes["gen_ai.tool.call.result"] == output["tools"][0]["result"]


async def test_workflow_name_group_id_and_metadata_are_the_roots(
    traced: httpx.AsyncClient, receiver: OTLPReceiver
) -> None:
    await create_agent(traced)
    config = {
        "workflow_name": "Support flow",
        "group_id": "thread-7",
        "trace_metadata": {
            "tenant": "acme",
            "tier": 3,
            "beta": True,
            "tags": ["a", "b"],
            "extra": {"x": 1},
        },
    }
    output = await run(traced, run_config=config)
    spans = await receiver.wait_run(output["run_id"])
    root = one(spans, "Support flow")
    assert root.attributes == root.attributes | {
        "gen_ai.workflow.name": "Support flow",
        "agentd.group_id": "thread-7",
        "agentd.trace_metadata.tenant": "acme",
        "agentd.trace_metadata.tier": 3,
        "agentd.trace_metadata.beta": True,
        "agentd.trace_metadata.tags": ["a", "b"],
        "agentd.trace_metadata.extra": '{"x":1}',
    }
    assert one(spans, "invoke_agent Helper").parent_span_id == root.span_id


async def test_a_failing_tool_is_an_error_span_and_the_run_goes_on(
    traced: httpx.AsyncClient, receiver: OTLPReceiver, fake: FakeOpenAIServer
) -> None:
    await create_agent(traced, tools=["calculator"])
    fake.enqueue(
        Reply(tool_calls=[ToolCall("calculator", {"expression": "1/0"}, id="c1")]),
        Reply(tool_calls=[ToolCall("no_such_tool", {}, id="c2")]),
        Reply(text="Sorry."),
    )
    output = await run(traced)
    assert output["status"] == "completed"
    spans = await receiver.wait_run(output["run_id"])
    failed = one(spans, "execute_tool calculator")
    unknown = one(spans, "execute_tool no_such_tool")
    for span in (failed, unknown):
        assert span.status == "error"
        assert span.attributes["error.type"] == "tool_error"
        assert span.attributes["agentd.tool.status"] == "error"
        assert span.status_message  # sensitive data is allowed: the description is kept
    assert "unknown tool" in unknown.status_message
    assert one(spans, "Agent workflow").status == "unset"


async def test_a_model_error_fails_the_chat_the_agent_and_the_run(
    traced: httpx.AsyncClient, receiver: OTLPReceiver, fake: FakeOpenAIServer
) -> None:
    await create_agent(traced, model_settings={"max_retries": 0})
    fake.enqueue(*[Reply(status=400, error="bad request")] * 3)
    output = await run(traced)
    assert output["status"] == "error"
    spans = await receiver.wait_run(output["run_id"])
    for name in ("chat gpt-4o-mini", "invoke_agent Helper", "Agent workflow"):
        span = one(spans, name)
        assert span.status == "error", name
        assert span.attributes["error.type"] == "model_provider_error"
    assert one(spans, "Agent workflow").attributes["agentd.run.status"] == "error"


async def test_handoffs_start_the_next_agents_span(
    traced: httpx.AsyncClient, receiver: OTLPReceiver, fake: FakeOpenAIServer
) -> None:
    await create_agent(traced, id="billing", name="Billing")
    await create_agent(traced, id="triage", name="Triage", handoffs=["billing"])
    fake.enqueue(
        Reply(tool_calls=[ToolCall("transfer_to_billing", {}, id="h1")]),
        Reply(text="Billing here."),
    )
    output = await run(traced, "triage")
    assert output["content"] == "Billing here."
    spans = await receiver.wait_run(output["run_id"])
    root = one(spans, "Agent workflow")
    triage = one(spans, "invoke_agent Triage")
    billing = one(spans, "invoke_agent Billing")
    handoff = one(spans, "handoff Billing")
    assert triage.parent_span_id == billing.parent_span_id == root.span_id
    assert handoff.parent_span_id == triage.span_id
    assert triage.end_ns <= billing.start_ns
    assert handoff.attributes == handoff.attributes | {
        "gen_ai.operation.name": "handoff",
        "agentd.handoff.from_agent_id": "triage",
        "agentd.handoff.to_agent_id": "billing",
        "gen_ai.tool.call.id": "h1",
    }
    first, second = named(spans, "chat gpt-4o-mini")
    assert (first.parent_span_id, second.parent_span_id) == (triage.span_id, billing.span_id)
    assert not [span for span in spans if span.name.startswith("execute_tool")]


async def test_guardrails_have_spans_and_a_tripwire_fails_the_run(
    traced: httpx.AsyncClient, receiver: OTLPReceiver, fake: FakeOpenAIServer
) -> None:
    await create_agent(
        traced,
        id="classifier",
        name="Classifier",
        model="test:echo",
    )
    await create_agent(
        traced,
        input_guardrails=[
            {"type": "max_length", "max_length": 1000, "name": "short"},
            {"type": "agent", "agent_id": "classifier", "name": "judge"},
        ],
    )
    output = await run(traced, input="trip")
    assert output["status"] == "error"
    assert output["error"]["code"] == "input_guardrail_tripwire_triggered"
    spans = await receiver.wait_run(output["run_id"])
    agent = one(spans, "invoke_agent Helper")
    short = one(spans, "apply_guardrail short")
    judge = one(spans, "apply_guardrail judge")
    assert short.parent_span_id == judge.parent_span_id == agent.span_id
    assert short.attributes == short.attributes | {
        "gen_ai.operation.name": "apply_guardrail",
        "gen_ai.guardrail.component.name": "short",
        "gen_ai.guardrail.source": "input",
        "gen_ai.guardrail.result.type": "tripwire_triggered",
        "gen_ai.guardrail.result.value": "false",
        "agentd.guardrail.type": "max_length",
    }
    assert judge.attributes["gen_ai.guardrail.result.value"] == "true"
    assert judge.status == "unset"  # the guardrail worked: it is the run that failed
    # The classifier agent's own run hangs under its guardrail, in the same run's trace.
    classifier = one(spans, "invoke_agent Classifier")
    assert classifier.parent_span_id == judge.span_id
    assert one(spans, "chat echo").parent_span_id == classifier.span_id
    root = one(spans, "Agent workflow")
    assert root.status == "error"
    assert root.attributes["error.type"] == "input_guardrail_tripwire_triggered"
    assert fake.requests == []  # the guarded agent's model was never called
