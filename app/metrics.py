"""`GET /metrics`: Prometheus text exposition of this process.

Everything is read when the endpoint is scraped (a custom collector over the
run manager, the event bus and the connection pool), so serving runs pays
nothing for it. Each app has its own registry: several apps in one process
(tests) never share or clash over metrics. Like the health routes it needs no
API key; expose it only where scrapers can reach it.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.engine.models.pacing import ReadPacer
from app.tracing import SpanCounts
from app.worker.manager import RunManager

router = APIRouter(tags=["health"])


class ServiceCollector(Collector):
    """Runs, live event channels, model-stream pacing, trace spans and database
    connections, as they are now."""

    def __init__(
        self,
        manager: RunManager,
        engine: AsyncEngine,
        pacer: ReadPacer,
        spans: SpanCounts | None = None,
    ) -> None:
        self.manager = manager
        self.engine = engine
        self.pacer = pacer
        self.spans = spans

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        manager = self.manager
        yield GaugeMetricFamily(
            "agentd_runs_in_flight", "Runs executing in this process.", value=manager.in_flight
        )
        yield GaugeMetricFamily(
            "agentd_runs_capacity",
            "Runs this process executes at once at most (MAX_CONCURRENT_RUNS).",
            value=manager.max_concurrent_runs,
        )
        ended = CounterMetricFamily(
            "agentd_runs_ended",
            "Runs this process executed, by how they ended (a paused run counts once per pause).",
            labels=["status"],
        )
        for status in ("completed", "error", "cancelled", "paused"):
            ended.add_metric([status], manager.ended[status])
        yield ended
        yield GaugeMetricFamily(
            "agentd_event_channels",
            "Runs whose events this process fans out live.",
            value=len(manager.bus),
        )
        yield GaugeMetricFamily(
            "agentd_model_read_pacing",
            "1 while the event loop is saturated and model-stream reads wait"
            " (MODEL_READ_COALESCE_SECONDS), else 0.",
            value=int(self.pacer.engaged),
        )
        yield CounterMetricFamily(
            "agentd_model_reads_held",
            "Model-stream reads that waited for the tokens after them, under load.",
            value=self.pacer.holds,
        )
        if self.spans is not None:  # tracing is on
            yield CounterMetricFamily(
                "agentd_trace_spans_exported",
                "Spans of runs' traces the collector accepted.",
                value=self.spans.exported,
            )
            dropped = CounterMetricFamily(
                "agentd_trace_spans_dropped",
                "Spans of runs' traces lost: no room in the export queue (OTEL_BSP_MAX_QUEUE_SIZE)"
                " or their export failed (the collector unreachable or refusing them).",
                labels=["reason"],
            )
            dropped.add_metric(["queue_full"], self.spans.dropped_queue_full)
            dropped.add_metric(["export_failed"], self.spans.dropped_export_failed)
            yield dropped
        pool = self.engine.sync_engine.pool
        if isinstance(pool, QueuePool):
            yield GaugeMetricFamily(
                "agentd_db_connections_in_use",
                "Database connections checked out of the pool.",
                value=pool.checkedout(),
            )
            yield GaugeMetricFamily(
                "agentd_db_pool_size", "Connections the pool keeps open.", value=pool.size()
            )


def build_registry(
    manager: RunManager, engine: AsyncEngine, pacer: ReadPacer, spans: SpanCounts | None = None
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ServiceCollector(manager, engine, pacer, spans))
    # The process, platform and GC collectors read global state: share prometheus_client's.
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
async def metrics(request: Request) -> Response:
    """This process's metrics in the Prometheus text format."""
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
