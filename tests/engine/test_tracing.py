"""The engine's side of tracing: a run that is not traced builds no span and no
attribute; a sampled-out run stops at its root; a tracer that fails never fails
the run."""

from __future__ import annotations

from collections.abc import Mapping

from app.engine.models.test import TestModel
from app.engine.state import TraceContext
from app.engine.tools import default_registry
from app.engine.tracing import NO_TRACE, NO_TRACER, Attributes, AttributeValue, Span

from .helpers import Models, agent, collect, make_runner, new_state, run


class FakeSpan:
    def __init__(self, recording: bool) -> None:
        self.recording = recording
        self.attributes: dict[str, AttributeValue] = {}
        self.ended = False

    def is_recording(self) -> bool:
        return self.recording

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        self.attributes.update(attributes)

    def end(self, end_time: int | None = None) -> None:
        self.ended = True


class CountingTracer:
    """A tracer whose roots record or not; counts what the engine asks of it."""

    enabled = True
    include_sensitive_data = True

    def __init__(self, *, sample: bool = True, fail: bool = False) -> None:
        self.sample = sample
        self.fail = fail
        self.roots: list[FakeSpan] = []
        self.spans: list[tuple[str, Attributes]] = []

    def start_root(self, name: str, trace: TraceContext, attributes: Attributes) -> Span:
        if self.fail:
            raise RuntimeError("the tracer is broken")
        self.roots.append(FakeSpan(self.sample))
        return self.roots[-1]

    def start_span(
        self, name: str, parent: Span, attributes: Attributes, *, client: bool = False
    ) -> Span:
        self.spans.append((name, attributes))
        return FakeSpan(True)

    def set_error(self, span: Span, error_type: str, description: str | None) -> None:
        return None

    def ids(self, span: Span) -> tuple[str, str]:
        return "1" * 32, "2" * 16


async def test_without_a_tracer_a_run_gets_no_trace_and_keeps_no_trace_context() -> None:
    spec = agent(model="test:tools", tools=["current_time"])
    runner = make_runner(spec, tools=default_registry, models=Models(test=TestModel()))
    assert runner.tracer is NO_TRACER
    state = new_state(runner, spec)
    assert runner.trace(state) is NO_TRACE
    result = await collect(runner, state)
    assert result.state.status == "completed"
    assert result.state.trace is None
    assert all(snapshot["trace"] is None for snapshot in result.snapshots)


async def test_a_sampled_out_run_builds_nothing_below_its_root() -> None:
    spec = agent(model="test:tools", tools=["current_time"])
    tracer = CountingTracer(sample=False)
    runner = make_runner(spec, tools=default_registry, models=Models(test=TestModel()))
    runner.tracer = tracer
    result = await run(runner, spec)
    assert result.state.status == "completed"
    assert len(tracer.roots) == 1
    assert tracer.spans == []


async def test_a_traced_run_keeps_its_trace_in_its_state() -> None:
    spec = agent(model="test:tools", tools=["current_time"])
    tracer = CountingTracer()
    runner = make_runner(spec, tools=default_registry, models=Models(test=TestModel()))
    runner.tracer = tracer
    result = await run(runner, spec)
    assert [name for name, _ in tracer.spans] == [
        "invoke_agent a",
        "chat tools",
        "execute_tool current_time",
        "chat tools",
    ]
    assert tracer.roots[0].ended
    assert tracer.roots[0].attributes == {"agentd.run.status": "completed"}
    assert result.state.trace == TraceContext(trace_id="1" * 32, last_span_id="2" * 16)
    # The first checkpoint already holds the trace: a crash after it resumes in it.
    assert result.snapshots[0]["trace"]["trace_id"] == "1" * 32


async def test_a_tracer_that_fails_does_not_fail_the_run() -> None:
    spec = agent(model="test:echo")
    runner = make_runner(spec, tools=default_registry, models=Models(test=TestModel()))
    runner.tracer = CountingTracer(fail=True)
    result = await run(runner, spec)
    assert result.state.status == "completed"
