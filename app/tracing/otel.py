"""The OpenTelemetry tracer behind the engine's `Tracer`: an app's own provider,
its exporters behind a bounded `BatchSpanProcessor`, and counts of what was
exported and dropped.

A run keeps one trace id for its life (`TraceContext.trace_id`), so the root
span of each execution is started in that trace: under the caller's span when
the run came with a `traceparent`, else as a root whose trace id the id
generator takes from the run. Everything else about spans (sampler, resource,
endpoint, headers, timeouts, batch sizes) comes from the standard `OTEL_*`
variables, read by the SDK itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Sequence
from typing import cast

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode

from app.engine.state import TraceContext
from app.engine.tracing import ERROR_TYPE, Attributes, Span
from app.tracing import SpanCounts, Tracing, TracingPlan

SCOPE = "agentd"
SHUTDOWN_SECONDS = 5.0  # spans still queued then are lost: a stop never waits longer
SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class RunIds(RandomIdGenerator):
    """Random ids, except the trace id of a run's root span: the run's own."""

    def __init__(self) -> None:
        self.chosen: contextvars.ContextVar[int | None] = contextvars.ContextVar(
            "agentd_trace_id", default=None
        )

    def generate_trace_id(self) -> int:
        chosen = self.chosen.get()
        return chosen if chosen is not None else super().generate_trace_id()


class OtelTracer:
    """The engine's `Tracer` over an OpenTelemetry SDK tracer."""

    enabled = True

    def __init__(
        self, provider: TracerProvider, ids: RunIds, *, include_sensitive_data: bool
    ) -> None:
        self.include_sensitive_data = include_sensitive_data
        self._tracer = provider.get_tracer(SCOPE)
        self._ids = ids

    def start_root(self, name: str, trace: TraceContext, attributes: Attributes) -> Span:
        context = Context()  # never the caller's current span: a run has its own parent
        links: list[Link] = []
        trace_id = int(trace.trace_id, 16) if trace.trace_id else None
        if trace_id is not None and trace.parent_span_id:
            flags = SAMPLED if trace.sampled else TraceFlags(TraceFlags.DEFAULT)
            caller = SpanContext(trace_id, int(trace.parent_span_id, 16), True, flags)
            context = trace_api.set_span_in_context(NonRecordingSpan(caller), context)
        if trace_id is not None and trace.last_span_id:
            previous = SpanContext(trace_id, int(trace.last_span_id, 16), False, SAMPLED)
            links.append(Link(previous, {"agentd.link": "previous_execution"}))
        token = self._ids.chosen.set(trace_id)
        try:
            return self._tracer.start_span(name, context, attributes=attributes, links=links)
        finally:
            self._ids.chosen.reset(token)

    def start_span(
        self, name: str, parent: Span, attributes: Attributes, *, client: bool = False
    ) -> Span:
        context = trace_api.set_span_in_context(cast(trace_api.Span, parent))
        kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
        return self._tracer.start_span(name, context, kind, attributes=attributes)

    def set_error(self, span: Span, error_type: str, description: str | None) -> None:
        otel_span = cast(trace_api.Span, span)
        otel_span.set_attribute(ERROR_TYPE, error_type)
        otel_span.set_status(Status(StatusCode.ERROR, description))

    def ids(self, span: Span) -> tuple[str, str]:
        context = cast(trace_api.Span, span).get_span_context()
        return f"{context.trace_id:032x}", f"{context.span_id:016x}"


class CountingProcessor(SpanProcessor):
    """The batch processor, counting the spans its queue has no room for.

    It keeps its own tally of the spans waiting in the queue (handed in, not yet
    handed to the exporter) with the same bound: a span that finds the tally at
    the bound is one the batch processor drops."""

    def __init__(self, inner: BatchSpanProcessor, counts: SpanCounts, max_queue_size: int) -> None:
        self._inner = inner
        self._counts = counts
        self._bound = max_queue_size
        self._lock = threading.Lock()
        self.waiting = 0

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        self._inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            with self._lock:
                if self.waiting >= self._bound:
                    self._counts.dropped_queue_full += 1
                else:
                    self.waiting += 1
        self._inner.on_end(span)

    def taken(self, count: int) -> None:
        """`count` spans left the queue for the exporter."""
        with self._lock:
            self.waiting = max(0, self.waiting - count)

    def shutdown(self) -> None:
        self._inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class CountingExporter(SpanExporter):
    """An exporter that tells the processor a batch left its queue, and counts the
    spans exported and those whose export failed (dropped too)."""

    def __init__(self, inner: SpanExporter, counts: SpanCounts) -> None:
        self._inner = inner
        self._counts = counts
        self._closed = False
        self.processor: CountingProcessor | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.processor is not None:
            self.processor.taken(len(spans))
        try:
            result = self._inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self._counts.exported += len(spans)
        else:
            self._counts.dropped_export_failed += len(spans)
        return result

    def shutdown(self) -> None:
        """Also what cuts an export's retries short when a stop has waited enough."""
        if not self._closed:
            self._closed = True
            self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout, compression: OTEL_EXPORTER_OTLP_*


def _resource() -> Resource:
    """OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; the service is `agentd` unless named."""
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: SCOPE}))
    return resource


def start(plan: TracingPlan) -> Tracing:
    """A provider of the app's own, with one counted batch processor per exporter."""
    ids = RunIds()
    provider = TracerProvider(
        resource=_resource(), id_generator=ids
    )  # sampler: OTEL_TRACES_SAMPLER
    counts = SpanCounts()
    exporters: list[CountingExporter] = []
    for name in plan.exporters:
        exporter = CountingExporter(_exporter(name), counts)
        batch = BatchSpanProcessor(exporter, max_queue_size=plan.max_queue_size)
        exporter.processor = CountingProcessor(batch, counts, plan.max_queue_size)
        provider.add_span_processor(exporter.processor)
        exporters.append(exporter)
    tracer = OtelTracer(provider, ids, include_sensitive_data=plan.include_sensitive_data)

    async def flush() -> bool:
        return await asyncio.to_thread(provider.force_flush, int(SHUTDOWN_SECONDS * 1000))

    async def close() -> None:
        """Export what is queued, for at most SHUTDOWN_SECONDS: the processors join
        their workers in a daemon thread, and an export still retrying then (an
        unreachable collector) is cut short."""
        stopping = threading.Thread(target=provider.shutdown, name="agentd-tracing-stop")
        stopping.daemon = True
        stopping.start()
        await asyncio.to_thread(stopping.join, SHUTDOWN_SECONDS)
        if stopping.is_alive():
            for exporter in exporters:
                exporter.shutdown()

    return Tracing(tracer, counts, flush, close)
