"""Log lines: text, or one JSON object per line (`LOG_FORMAT=json`), and the run
each line was written for.

While a worker executes a run (`handling`), every line written in its task,
and in the tasks and threads the run starts (they copy the task's context),
carries the run's `run_id`, `session_id`, `agent_id` (the agent answering at
that moment) and, when the run is traced, the `trace_id` and `span_id` of the
execution's root span, so a line leads to its run and its trace.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from app.engine.state import RunState

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# uvicorn's own loggers, which do not propagate to the root: JSON lines too.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.access")


@dataclass(slots=True)
class RunLogContext:
    state: RunState
    trace_id: str = ""
    span_id: str = ""

    def fields(self) -> dict[str, str]:
        state = self.state
        fields = {
            "run_id": state.run_id,
            "session_id": state.session_id,
            "agent_id": state.active_agent_id,
        }
        if self.trace_id:
            fields["trace_id"] = self.trace_id
            fields["span_id"] = self.span_id
        return fields


current_run: ContextVar[RunLogContext | None] = ContextVar("agentd_run", default=None)


@contextmanager
def handling(state: RunState, trace_id: str = "", span_id: str = "") -> Iterator[None]:
    """Lines written inside the block carry the run's fields."""
    token = current_run.set(RunLogContext(state, trace_id, span_id))
    try:
        yield
    finally:
        current_run.reset(token)


def run_fields() -> dict[str, str]:
    context = current_run.get()
    return context.fields() if context is not None else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the run's fields,
    and the exception's traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **run_fields(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The classic line, with the run's fields after the message (before a traceback)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        fields = run_fields()
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text


class _AgentdHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure` installs (replaced, not doubled, when called again)."""


def configure(level: str, log_format: str) -> None:
    """Lines at `level` and above go to stderr as text or JSON."""
    handler = _AgentdHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in [h for h in root.handlers if isinstance(h, _AgentdHandler)]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    if log_format == "json":
        for name in UVICORN_LOGGERS:
            logging.getLogger(name).handlers = [handler]
