"""Log lines as text or JSON, with the run being handled on every line written
for it (and nothing of a run on other lines)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from app import logs
from app.engine.state import RunState

STATE = RunState(
    run_id="r-1", session_id="s-1", created_at="2025-01-01T00:00:00Z", agent_id="a",
    active_agent_id="b", max_turns=3,
)  # fmt: skip


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield stream, handler
    logger.removeHandler(handler)
    logger.propagate = True


def test_json_lines_carry_the_run_and_its_trace(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    stream, handler = captured
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("tests.logs")
    logger.info("before %s", "the run")
    with logs.handling(STATE, "ab" * 16, "cd" * 8):
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("inside")
    logger.warning("after")
    before, inside, after = (json.loads(line) for line in stream.getvalue().splitlines())
    assert before.keys() == {"time", "level", "logger", "message"}
    assert (before["level"], before["logger"], before["message"]) == (
        "INFO",
        "tests.logs",
        "before the run",
    )
    assert before["time"].endswith("+00:00")
    assert inside == inside | {
        "message": "inside",
        "level": "ERROR",
        "run_id": "r-1",
        "session_id": "s-1",
        "agent_id": "b",  # the agent answering now
        "trace_id": "ab" * 16,
        "span_id": "cd" * 8,
    }
    assert inside["exception"].startswith("Traceback") and "ValueError: boom" in inside["exception"]
    assert "run_id" not in after


async def test_tasks_and_threads_of_a_run_log_its_fields(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    stream, handler = captured
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("tests.logs")
    with logs.handling(STATE):  # not traced: no trace ids
        await asyncio.to_thread(logger.info, "in a thread")
        await asyncio.create_task(asyncio.to_thread(logger.info, "in a task's thread"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["run_id"] for line in lines] == ["r-1", "r-1"]
    assert all("trace_id" not in line for line in lines)


def test_text_lines_add_the_run_after_the_message(
    captured: tuple[io.StringIO, logging.Handler],
) -> None:
    stream, handler = captured
    handler.setFormatter(logs.TextFormatter())
    logger = logging.getLogger("tests.logs")
    with logs.handling(STATE, "ab" * 16, "cd" * 8):
        logger.info("hello")
    logger.info("bye")
    inside, outside = stream.getvalue().splitlines()
    assert inside.endswith(
        f"INFO tests.logs hello run_id=r-1 session_id=s-1 agent_id=b trace_id={'ab' * 16}"
        f" span_id={'cd' * 8}"
    )
    assert outside.endswith("INFO tests.logs bye")


def test_configure_installs_one_handler_and_sends_uvicorn_lines_as_json() -> None:
    root = logging.getLogger()
    uvicorn_handlers = {name: logging.getLogger(name).handlers for name in logs.UVICORN_LOGGERS}
    level = root.level
    try:
        logs.configure("info", "json")
        logs.configure("warning", "json")
        ours = [h for h in root.handlers if isinstance(h.formatter, logs.JsonFormatter)]
        assert len(ours) == 1
        assert root.level == logging.WARNING
        for name in logs.UVICORN_LOGGERS:
            assert logging.getLogger(name).handlers == ours
        logs.configure("info", "text")
        assert [h for h in root.handlers if isinstance(h.formatter, logs.JsonFormatter)] == []
    finally:
        for handler in [h for h in root.handlers if isinstance(h, logging.StreamHandler)]:
            if isinstance(handler.formatter, logs.JsonFormatter | logs.TextFormatter):
                root.removeHandler(handler)
        for name, handlers in uvicorn_handlers.items():
            logging.getLogger(name).handlers = handlers
        root.setLevel(level)
