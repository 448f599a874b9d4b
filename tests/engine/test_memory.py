"""User memories in the loop: the update after the answer, the context of later
runs, the agentic tools, a run without a user, and a resumed update."""

from __future__ import annotations

from collections.abc import Sequence

from app.engine.memory import Memory, MemoryChange, MemoryUpdate
from app.engine.models.test import TestModel
from app.engine.state import RunState

from .helpers import (
    Models,
    Recorder,
    ScriptedModel,
    agent,
    calls_reply,
    collapse,
    collect,
    make_runner,
    run,
)


class Store:
    """A MemoryStore in a dict, counting its calls."""

    def __init__(self) -> None:
        self.rows: dict[str, Memory] = {}
        self.calls: list[str] = []

    async def list_memories(self, user_id: str) -> list[Memory]:
        self.calls.append("list")
        return [m for m in self.rows.values() if m.user_id == user_id]

    async def apply(
        self, user_id: str, agent_id: str, changes: Sequence[MemoryChange]
    ) -> MemoryUpdate:
        self.calls.append("apply")
        update = MemoryUpdate()
        for change in changes:
            row = self.rows.get(change.memory_id)
            if change.action == "delete":
                if row is not None:
                    del self.rows[change.memory_id]
                    update.deleted_memory_ids.append(change.memory_id)
            elif row is not None or change.action == "add":
                memory = Memory(
                    memory_id=change.memory_id,
                    user_id=user_id,
                    agent_id=agent_id,
                    memory=change.memory or "",
                    topics=change.topics or [],
                )
                self.rows[change.memory_id] = memory
                update.memories.append(memory)
        return update


MEMORY = {"enabled": True}
UPDATED = [
    "RunStarted",
    "RunContent",
    "Checkpoint",
    "Checkpoint",
    "RunContentCompleted",
    "Checkpoint",
    "MemoryUpdateStarted",
    "Checkpoint",
    "MemoryUpdateCompleted",
    "Checkpoint",
    "RunCompleted",
]


async def test_the_memory_model_stores_the_input_and_later_runs_see_it() -> None:
    store = Store()
    recorder = Recorder(TestModel())
    spec = agent(memory=MEMORY, instructions="Be kind.")
    runner = make_runner(spec, models=Models(test=recorder), memories=store)

    first = await run(runner, spec, "I like tea")
    assert collapse(first.names) == UPDATED
    completed = first.of("MemoryUpdateCompleted")[0]
    assert [m.memory for m in completed.memories] == ["I like tea"]
    assert completed.reason is None
    assert [r.purpose for r in recorder.requests] == ["agent", "memory"]
    manager = recorder.requests[1]
    assert [t.name for t in manager.tools] == ["add_memory", "update_memory", "delete_memory"]
    assert manager.messages[-1] == {"role": "user", "content": "I like tea"}
    assert first.last.metrics.model_calls == 2
    assert first.last.content == "I like tea"

    recorder.requests.clear()
    second = await run(runner, spec, "I like tea")  # said again: no duplicate
    assert second.of("MemoryUpdateCompleted")[0].memories == []
    assert len(store.rows) == 1
    system = recorder.requests[0].messages[0]["content"]
    assert system.startswith("Be kind.\n\n")
    assert "<memories_from_previous_interactions>\n- I like tea\n" in system
    memory_id = next(iter(store.rows))
    assert f"- [{memory_id}] I like tea" in recorder.requests[1].messages[0]["content"]


async def test_a_run_without_user_runs_without_memory_and_says_so() -> None:
    store = Store()
    recorder = Recorder(TestModel())
    spec = agent(memory=MEMORY)
    runner = make_runner(spec, models=Models(test=recorder), memories=store)
    state = runner.new_state(
        spec, "hello", run_id="r", session_id="s", user_id=None, created_at="2025-01-01T00:00:00Z"
    )
    result = await collect(runner, state)

    assert collapse(result.names) == UPDATED
    assert result.of("MemoryUpdateCompleted")[0].reason == "no_user_id"
    assert result.last.status == "completed"
    assert store.calls == [] and len(recorder.requests) == 1


async def test_an_agent_without_memory_costs_no_store_call_and_no_event() -> None:
    store = Store()
    spec = agent()
    result = await run(make_runner(spec, memories=store), spec, "hi")
    assert collapse(result.names) == [
        "RunStarted",
        "RunContent",
        "Checkpoint",
        "Checkpoint",
        "RunContentCompleted",
        "RunCompleted",
    ]
    assert store.calls == []


async def test_add_to_context_false_keeps_memories_out_of_the_system_message() -> None:
    store = Store()
    recorder = Recorder(TestModel())
    spec = agent(memory={"enabled": True, "add_to_context": False})
    runner = make_runner(spec, models=Models(test=recorder), memories=store)
    await run(runner, spec, "I like tea")
    recorder.requests.clear()
    await run(runner, spec, "I like coffee")
    assert recorder.requests[0].messages[0]["role"] == "user"
    assert store.calls.count("list") == 2  # the memory model's reads only


async def test_a_resumed_update_does_not_duplicate_memories() -> None:
    """A crash after the memories were written but before the run recorded it: the
    run resumes from its last checkpoint and writes the same memory again."""
    store = Store()
    memory_model = ScriptedModel(
        lambda request, _: (
            calls_reply(("c", "add_memory", '{"memory": "likes tea"}'))
            if request.purpose == "memory"
            else "Noted."
        )
    )
    spec = agent(memory={"enabled": True, "model": "scripted:m"}, model="scripted:main")
    runner = make_runner(spec, models=Models(scripted=memory_model), memories=store)
    result = await run(runner, spec, "I like tea")
    assert len(store.rows) == 1

    content_completed = result.of("RunContentCompleted")[0]
    resumed = RunState.model_validate(result.snapshot_before(content_completed))
    assert resumed.answered and not resumed.memory_updated
    again = await collect(runner, resumed)
    assert collapse(again.names) == UPDATED[5:]
    assert len(store.rows) == 1
    assert again.last.content == "Noted."


async def test_agentic_memory_gives_the_agent_the_memory_tools() -> None:
    store = Store()
    recorder = Recorder(TestModel())
    spec = agent(model="test:tools", memory={"agentic": True})
    runner = make_runner(spec, models=Models(test=recorder), memories=store)
    result = await run(runner, spec, "remember me")

    assert [t.name for t in recorder.requests[0].tools] == [
        "add_memory",
        "update_memory",
        "delete_memory",
    ]
    assert "MemoryUpdateStarted" not in result.names  # the agent manages them itself
    results = {e.tool.tool_name: e.content for e in result.of("ToolCallCompleted")}
    assert results["add_memory"].startswith("Memory ") and results["add_memory"].endswith(": a")
    assert [m.memory for m in store.rows.values()] == ["a"]
    assert all(e.tool.status == "completed" for e in result.of("ToolCallCompleted"))

    without_user = runner.new_state(
        spec, "x", run_id="r2", session_id="s", user_id=None, created_at="2025-01-01T00:00:00Z"
    )
    recorder.requests.clear()
    alone = await collect(runner, without_user)
    assert recorder.requests[0].tools == []
    assert alone.of("MemoryUpdateCompleted")[0].reason == "no_user_id"
