"""Tools: schemas from signatures, registries, execution through the loop."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import Field

from app.engine.events import CustomEvent, ToolCallCompleted
from app.engine.guardrails import GuardrailRegistry, default_guardrails
from app.engine.tools import (
    BUILTIN_TOOLS,
    RunContext,
    Tool,
    ToolRegistry,
    default_registry,
    tool,
)

from .helpers import Models, ScriptedModel, agent, calls_reply, make_runner, run


def test_schema_and_description_come_from_hints_and_docstring() -> None:
    def book(
        city: str,
        nights: Annotated[int, Field(ge=1)] = 1,
        kind: Literal["hotel", "hostel"] = "hotel",
        ctx: RunContext | None = None,
    ) -> str:
        """Book a room.

        Args:
            city: Where to stay.
            nights: How many nights.
        """
        return city

    item = Tool(book)
    assert item.name == "book"
    assert item.description == "Book a room."
    assert item.context_param == "ctx"
    assert item.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "Where to stay."},
            "nights": {
                "type": "integer",
                "minimum": 1,
                "default": 1,
                "description": "How many nights.",
            },
            "kind": {"type": "string", "enum": ["hotel", "hostel"], "default": "hotel"},
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    assert item.validate({"city": "Rome", "nights": "2"}) == {
        "city": "Rome",
        "nights": 2,
        "kind": "hotel",
    }


def test_decorator_bare_and_with_arguments() -> None:
    registry = ToolRegistry()

    @registry.tool
    def ping() -> str:
        """Answer pong."""
        return "pong"

    @registry.tool(name="slow_ping", description="Ping, slowly.", timeout=2.5)
    async def other() -> str:
        return "pong"

    assert ping() == "pong"  # the decorated function is still callable
    assert [t.name for t in registry.list()] == ["ping", "slow_ping"]
    assert registry.get("slow_ping").description == "Ping, slowly."
    assert registry.get("slow_ping").timeout == 2.5
    assert registry.get("slow_ping").is_async
    assert "ping" in registry and "pong" not in registry
    with pytest.raises(KeyError):
        registry.get("pong")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(lambda: None, name="ping")
    with pytest.raises(ValueError, match="invalid tool name"):
        registry.register(lambda: None, name="has space")


def test_default_registry_has_the_builtins_and_the_module_decorator() -> None:
    assert {"current_time", "calculator"} <= {t.name for t in default_registry.list()}

    @tool(name="engine_test_module_tool")
    def module_tool(x: int) -> int:
        return x

    assert default_registry.get("engine_test_module_tool") is module_tool


def test_load_modules_registers_tools_and_guardrails(tmp_path: Path) -> None:
    (tmp_path / "agentd_engine_test_plugins.py").write_text(
        "from app.engine.tools import tool\n"
        "from app.engine.guardrails import guardrail\n\n"
        "@tool\n"
        "def plugin_weather(city: str) -> str:\n"
        '    """The weather."""\n'
        "    return 'sunny'\n\n"
        "@guardrail(name='plugin_no_secrets')\n"
        "def no_secrets(text, ctx):\n"
        "    return 'secret' in text\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        registry, guardrails = ToolRegistry(), GuardrailRegistry()
        assert registry.load_modules(["agentd_engine_test_plugins"]) == ["plugin_weather"]
        assert guardrails.load_modules(["agentd_engine_test_plugins"]) == ["plugin_no_secrets"]
    finally:
        sys.path.remove(str(tmp_path))
    assert registry.get("plugin_weather").description == "The weather."
    assert "plugin_weather" in default_registry
    assert "plugin_no_secrets" in guardrails and "plugin_no_secrets" in default_guardrails
    with pytest.raises(ModuleNotFoundError):
        registry.load_modules(["agentd_no_such_module"])


def _lookup(city: str) -> str:
    """Look a city up (sync)."""
    return f"{city}: 21C"


async def _alookup(city: str, days: int = 1) -> dict[str, Any]:
    """Look a city up (async)."""
    await asyncio.sleep(0)
    return {"city": city, "days": days}


async def test_sync_and_async_tools_run_and_the_model_reads_the_results() -> None:
    spec = agent(model="test:tools", tools=["_lookup", "_alookup"])
    result = await run(make_runner(spec, tools=[_lookup, _alookup]), spec)

    assert result.names[:4] == ["RunStarted", "Checkpoint", "ToolCallStarted", "ToolCallStarted"]
    assert result.names[4:8] == ["Checkpoint", "ToolCallCompleted"] * 2
    assert result.names[-3:] == ["Checkpoint", "RunContentCompleted", "RunCompleted"]
    assert result.last.content == "Called 2 tools."
    tools = {t.tool_name: t for t in result.last.tools}
    assert tools["_lookup"].result == "a: 21C"
    assert tools["_alookup"].result == {"city": "a", "days": 1}
    assert {t.status for t in tools.values()} == {"completed"}
    assert all(t.started_at and t.completed_at and t.agent_id == "a" for t in tools.values())
    tool_messages = {
        m["tool_call_id"]: m["content"] for m in result.state.messages if m["role"] == "tool"
    }
    assert tool_messages == {"call_0_0": "a: 21C", "call_0_1": '{"city":"a","days":1}'}
    assert result.last.metrics.tool_calls == 2
    assert result.last.metrics.model_calls == 2


def _explode(reason: str) -> str:
    raise RuntimeError(f"boom: {reason}")


async def _slow() -> str:
    await asyncio.sleep(5)
    return "never"


async def _flaky_network() -> str:
    raise TimeoutError("upstream did not answer")


def _add(a: int, b: int) -> int:
    return a + b


async def test_failing_calls_become_error_results_and_the_run_goes_on() -> None:
    script = ScriptedModel(
        [
            calls_reply(
                ("c1", "_explode", '{"reason": "disk"}'),
                ("c2", "_slow", "{}"),
                ("c3", "nope", "{}"),
                ("c4", "_add", '{"a": "x", "b": 1}'),
                ("c5", "_add", "{not json"),
                ("c6", "_add", '{"a": 1, "b": 2, "c": 3}'),
                ("c7", "_flaky_network", "{}"),
            ),
            "I saw the errors.",
        ]
    )
    spec = agent(model="script:m", tools=["_explode", "_slow", "_add", "_flaky_network"])
    tools = ToolRegistry([_explode, _add, _flaky_network])
    tools.register(_slow, timeout=0.05)
    started = time.monotonic()
    result = await run(make_runner(spec, tools=tools, models=Models(script=script)), spec)
    assert time.monotonic() - started < 2

    assert result.last.status == "completed"
    assert result.last.content == "I saw the errors."
    errors = {t.tool_call_id: t.error for t in result.last.tools}
    assert {t.status for t in result.last.tools} == {"error"}
    assert errors["c1"] == "tool _explode failed: RuntimeError: boom: disk"
    assert errors["c2"] == "tool _slow timed out after 0.05 s"
    assert errors["c3"] == "unknown tool 'nope'; available: _add, _explode, _flaky_network, _slow"
    assert errors["c4"] is not None and errors["c4"].startswith(
        "invalid arguments for tool _add: a:"
    )
    assert errors["c5"] is not None and "not valid JSON" in errors["c5"]
    assert errors["c6"] is not None and "c: Extra inputs are not permitted" in errors["c6"]
    # the model reads every error in the next request
    seen = {
        m["tool_call_id"]: m["content"] for m in script.requests[1].messages if m["role"] == "tool"
    }
    assert seen["c1"] == "Error: tool _explode failed: RuntimeError: boom: disk"
    assert errors["c7"] == "tool _flaky_network failed: TimeoutError: upstream did not answer"
    assert set(seen) == {"c1", "c2", "c3", "c4", "c5", "c6", "c7"}
    completed = result.of("ToolCallCompleted")
    assert {e.tool.status for e in completed} == {"error"}


def _remember(note: str, ctx: RunContext) -> str:
    """A sync tool: runs in a worker thread."""
    ctx.session_state.setdefault("notes", []).append(note)
    ctx.emit("noted", {"note": note, "user": ctx.user_id})
    return ctx.idempotency_key


async def _count(ctx: RunContext) -> dict[str, Any]:
    ctx.session_state["count"] = ctx.session_state.get("count", 0) + 1
    ctx.emit("counted", ctx.session_state["count"])
    return {"run": ctx.run_id, "session": ctx.session_id, "agent": ctx.agent_id}


async def test_run_context_session_state_and_custom_events() -> None:
    spec = agent(model="test:tools", tools=["_remember", "_count"])
    runner = make_runner(spec, tools=[_remember, _count])
    result = await run(runner, spec, session_state={"count": 41})

    assert result.state.session_state == {"count": 42, "notes": ["a"]}
    tools = {t.tool_name: t.result for t in result.last.tools}
    assert tools["_remember"] == "run-1:call_0_0"
    assert tools["_count"] == {"run": "run-1", "session": "sess-1", "agent": "a"}
    custom = {e.name: e for e in result.of("CustomEvent")}
    assert custom["noted"].data == {"note": "a", "user": "user-1"}
    assert custom["noted"].tool_call_id == "call_0_0"
    assert custom["counted"].data == 42
    for event in custom.values():
        done = next(
            e
            for e in result.events
            if isinstance(e, ToolCallCompleted) and e.tool.tool_call_id == event.tool_call_id
        )
        # each CustomEvent arrives before the completion of the call that emitted it
        assert isinstance(event, CustomEvent)
        assert result.events.index(event) < result.events.index(done)
        # the result and the session state are persisted before the completion is announced
        persisted = result.snapshot_before(done)
        answered = [m["tool_call_id"] for m in persisted["messages"] if m["role"] == "tool"]
        assert event.tool_call_id in answered
        if event.name == "counted":
            assert persisted["session_state"]["count"] == 42


async def test_session_state_changes_merge_per_tool_and_failures_change_nothing() -> None:
    def put(ctx: RunContext) -> str:
        ctx.session_state["cart"].append("pear")
        ctx.session_state["seen"] = True
        return "ok"

    def drop(ctx: RunContext) -> str:
        del ctx.session_state["coupon"]
        return "ok"

    def broken(ctx: RunContext) -> str:
        ctx.session_state["cart"] = "garbage"
        ctx.session_state["coupon"] = "stolen"
        raise RuntimeError("no")

    spec = agent(model="test:tools", tools=["put", "drop", "broken"])
    start = {"cart": ["apple"], "coupon": "X1", "other": 1}
    result = await run(make_runner(spec, tools=[put, drop, broken]), spec, session_state=start)
    assert result.state.session_state == {"cart": ["apple", "pear"], "seen": True, "other": 1}
    assert start == {"cart": ["apple"], "coupon": "X1", "other": 1}  # the caller's dict is copied


async def test_tool_calls_of_one_turn_run_concurrently() -> None:
    arrived = {"left": asyncio.Event(), "right": asyncio.Event()}
    gate = threading.Barrier(2, timeout=2)

    async def left() -> str:
        arrived["left"].set()
        await asyncio.wait_for(arrived["right"].wait(), 1)  # only if both run at once
        return "left"

    async def right() -> str:
        arrived["right"].set()
        await asyncio.wait_for(arrived["left"].wait(), 1)
        return "right"

    def sync_a() -> str:
        gate.wait()  # both sync tools must be in their threads at the same time
        return "a"

    def sync_b() -> str:
        gate.wait()
        return "b"

    spec = agent(model="test:tools", tools=["left", "right", "sync_a", "sync_b"])
    result = await run(make_runner(spec, tools=[left, right, sync_a, sync_b]), spec)
    assert {t.tool_name: t.result for t in result.last.tools} == {
        "left": "left",
        "right": "right",
        "sync_a": "a",
        "sync_b": "b",
    }
    assert result.names.count("ToolCallStarted") == 4
    # all four started before any completed
    assert result.names.index("ToolCallCompleted") > max(
        i for i, n in enumerate(result.names) if n == "ToolCallStarted"
    )


def test_builtins_are_plain_registered_tools() -> None:
    names = [t.name for t in BUILTIN_TOOLS]
    assert names == ["current_time", "calculator"]
    calculator = BUILTIN_TOOLS[1]
    assert calculator.parameters["required"] == ["expression"]
    assert "arithmetic" in calculator.description
