"""Session summaries in the loop: rewritten after the answer (and after the memory
update), carried into later runs' system message."""

from __future__ import annotations

from app.engine.models.test import TestModel
from app.engine.summary import SessionSummary

from .helpers import Models, Recorder, agent, collapse, make_runner, run
from .test_memory import Store


class Summaries:
    def __init__(self) -> None:
        self.saved: dict[str, SessionSummary] = {}

    async def save_summary(self, session_id: str, summary: SessionSummary) -> SessionSummary:
        stored = summary.model_copy(update={"updated_at": "2025-01-01T00:00:01.000Z"})
        self.saved[session_id] = stored
        return stored


async def test_the_summary_is_rewritten_after_each_run_and_read_by_the_next() -> None:
    store = Summaries()
    recorder = Recorder(TestModel())
    spec = agent(session_summary={"enabled": True}, instructions="Hi.")
    runner = make_runner(spec, models=Models(test=recorder), summaries=store)

    first = await run(runner, spec, "I am Ada")
    assert collapse(first.names) == [
        "RunStarted",
        "RunContent",
        "Checkpoint",
        "Checkpoint",
        "RunContentCompleted",
        "Checkpoint",
        "SessionSummaryStarted",
        "Checkpoint",
        "SessionSummaryCompleted",
        "Checkpoint",
        "RunCompleted",
    ]
    summary = first.of("SessionSummaryCompleted")[0].session_summary
    assert summary.summary == "I am Ada"
    assert store.saved["sess-1"] == summary
    request = recorder.requests[1]
    assert request.purpose == "summary"
    assert request.messages[1]["content"] == (
        "<conversation>\nUser: I am Ada\nAssistant: I am Ada\n</conversation>"
    )

    recorder.requests.clear()
    second = await run(runner, spec, "I like tea", session_summary=summary)
    system = recorder.requests[0].messages[0]["content"]
    assert "<summary_of_previous_interactions>\nI am Ada\n" in system
    assert (
        "<previous_summary>\nI am Ada\n</previous_summary>"
        in (recorder.requests[1].messages[0]["content"])
    )
    assert second.of("SessionSummaryCompleted")[0].session_summary.summary == "I am Ada\nI like tea"
    assert second.last.metrics.model_calls == 2


async def test_memory_then_summary_then_the_end() -> None:
    spec = agent(memory={"enabled": True}, session_summary={"enabled": True})
    runner = make_runner(spec, memories=Store(), summaries=Summaries())
    result = await run(runner, spec, "hello")
    names = [n for n in result.names if n != "Checkpoint"]
    assert names[-6:] == [
        "RunContentCompleted",
        "MemoryUpdateStarted",
        "MemoryUpdateCompleted",
        "SessionSummaryStarted",
        "SessionSummaryCompleted",
        "RunCompleted",
    ]


async def test_a_summary_without_session_summaries_enabled_stays_out() -> None:
    recorder = Recorder(TestModel())
    spec = agent()
    runner = make_runner(spec, models=Models(test=recorder), summaries=Summaries())
    previous = SessionSummary(summary="old")
    result = await run(runner, spec, "x", session_summary=previous)
    assert recorder.requests[0].messages == [{"role": "user", "content": "x"}]
    assert "SessionSummaryStarted" not in result.names
