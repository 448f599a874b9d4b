"""Tracing: whether runs are traced, where their spans go, and the trace a new run joins.

Configured by the standard OpenTelemetry environment variables only
(`OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`,
`OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, ...): runs are traced
when an exporter is named or an OTLP endpoint is given, unless `OTEL_SDK_DISABLED`
or the `TRACING_DISABLED` setting says otherwise. Off, the Runner keeps the
engine's no-op tracer and the OpenTelemetry SDK is not even imported.

On, each app builds its own `TracerProvider` (never the process-wide one, so
apps with different settings in one process keep apart) exporting through a
`BatchSpanProcessor`: a bounded queue drained by a thread of its own, so an
unreachable collector never slows or fails a run; spans that do not fit the
queue, or whose export failed, are counted (`/metrics`).
"""

from __future__ import annotations

import os
import random
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app.config import BadSettings, Settings
from app.engine.tracing import NO_TRACER, Tracer

# `run_config.trace_id`: 32 hex digits, or as the OpenAI Agents SDK writes it.
TRACE_ID_PATTERN = re.compile(r"^(trace_)?[0-9a-fA-F]{32}$")
EXPORTERS = ("otlp", "console")
DEFAULT_MAX_QUEUE_SIZE = 2048  # the OpenTelemetry default of OTEL_BSP_MAX_QUEUE_SIZE


@dataclass(frozen=True, slots=True)
class TracingPlan:
    """What the environment asks for, checked when the app is built."""

    exporters: tuple[str, ...]
    max_queue_size: int
    include_sensitive_data: bool


class SpanCounts:
    """Spans finished by this process, exported, and dropped (read by /metrics)."""

    def __init__(self) -> None:
        self.exported = 0
        self.dropped_queue_full = 0
        self.dropped_export_failed = 0


@dataclass(slots=True)
class Tracing:
    """The app's tracer for the Runner, its counts, and how to stop it."""

    tracer: Tracer
    counts: SpanCounts | None = None
    flush: Callable[[], Awaitable[bool]] | None = None
    close: Callable[[], Awaitable[None]] | None = None

    @property
    def enabled(self) -> bool:
        return self.tracer.enabled

    async def shutdown(self) -> None:
        if self.close is not None:
            await self.close()


def plan_tracing(settings: Settings, environ: Mapping[str, str] = os.environ) -> TracingPlan | None:
    """None when runs are not traced; exits with one line on a value it cannot use."""
    if settings.tracing_disabled or environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    named = [e.strip().lower() for e in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    exporters = [e for e in named if e and e != "none"]
    if not any(named) and (
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        exporters = ["otlp"]
    if not exporters:
        return None
    for exporter in exporters:
        if exporter not in EXPORTERS:
            _bad("OTEL_TRACES_EXPORTER", f"unknown exporter {exporter!r} (otlp, console or none)")
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if "otlp" in exporters and protocol != "http/protobuf":
        _bad("OTEL_EXPORTER_OTLP_PROTOCOL", f"{protocol!r} is not supported (http/protobuf)")
    raw = environ.get("OTEL_BSP_MAX_QUEUE_SIZE", str(DEFAULT_MAX_QUEUE_SIZE))
    if not raw.strip().isdigit() or int(raw) < 1:
        _bad("OTEL_BSP_MAX_QUEUE_SIZE", "must be a positive integer")
    return TracingPlan(tuple(exporters), int(raw), settings.trace_include_sensitive_data)


def _bad(name: str, message: str) -> None:
    print(f"agentd: invalid settings: {name}: {message}", file=sys.stderr)
    raise BadSettings(2)


def start_tracing(plan: TracingPlan | None) -> Tracing:
    """The app's tracing; the OpenTelemetry SDK is imported only when `plan` is set."""
    if plan is None:
        return Tracing(NO_TRACER)
    from app.tracing.otel import start

    return start(plan)


def trace_id_hex(value: str) -> str:
    """A valid `run_config.trace_id` as the 32 lowercase hex digits of the trace."""
    return value.removeprefix("trace_").lower()


def valid_trace_id(value: str) -> bool:
    return TRACE_ID_PATTERN.match(value) is not None and int(trace_id_hex(value), 16) != 0


_propagator = TraceContextTextMapPropagator()


def trace_origin(
    trace_id: str | None, traceparent: str | None, *, traced: bool
) -> dict[str, Any] | None:
    """The trace a new run joins, stored with it: `trace_id` when the run names
    one; else, when it is traced, the caller's trace from a W3C `traceparent`
    (a malformed one is ignored) or a new trace."""
    if trace_id is not None:
        return {"trace_id": trace_id_hex(trace_id)}
    if not traced:
        return None
    if traceparent:
        caller = get_current_span(_propagator.extract({"traceparent": traceparent}))
        context = caller.get_span_context()
        if context.is_valid:
            return {
                "trace_id": f"{context.trace_id:032x}",
                "parent_span_id": f"{context.span_id:016x}",
                "sampled": context.trace_flags.sampled,
            }
    return {"trace_id": new_trace_id()}


def new_trace_id() -> str:
    value = 0
    while value == 0:
        value = random.getrandbits(128)
    return f"{value:032x}"
