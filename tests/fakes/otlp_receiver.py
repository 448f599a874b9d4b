"""An OTLP/HTTP trace receiver, as a collector is one: `POST /v1/traces` with a
protobuf `ExportTraceServiceRequest` (gzip-compressed or not), answered with an
`ExportTraceServiceResponse`. Every span received is kept, decoded into plain
values, for tests to assert on.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

PROTOBUF = "application/x-protobuf"


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str  # hex
    span_id: str
    parent_span_id: str  # "" for a root
    kind: str  # "internal", "client", ...
    attributes: dict[str, Any]
    status: str  # "unset", "ok", "error"
    status_message: str
    links: list[tuple[str, str, dict[str, Any]]]  # (trace_id, span_id, attributes)
    resource: dict[str, Any]
    scope: str
    start_ns: int
    end_ns: int

    @property
    def run_id(self) -> Any:
        return self.attributes.get("agentd.run_id")


def value_of(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value_of(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    return getattr(value, kind)


def attributes_of(pairs: Any) -> dict[str, Any]:
    return {pair.key: value_of(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def _link(link: Span.Link) -> tuple[str, str, dict[str, Any]]:
    return link.trace_id.hex(), link.span_id.hex(), attributes_of(link.attributes)


def _decode(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = attributes_of(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_").lower(),
                        attributes=attributes_of(span.attributes),
                        status=Status.StatusCode.Name(span.status.code)
                        .removeprefix("STATUS_CODE_")
                        .lower(),
                        status_message=span.status.message,
                        links=[
                            (
                                link.trace_id.hex(),
                                link.span_id.hex(),
                                attributes_of(link.attributes),
                            )
                            for link in span.links
                        ],
                        resource=resource,
                        scope=scope_spans.scope.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                    )
                )
    return spans


def is_root(span: ReceivedSpan) -> bool:
    """The root span of one execution of a run."""
    return span.attributes.get("gen_ai.operation.name") == "invoke_workflow"


@dataclass
class OTLPReceiver:
    """Use as `async with OTLPReceiver() as receiver:`; `receiver.endpoint` is the
    value for OTEL_EXPORTER_OTLP_ENDPOINT."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    # While set and not released, exports wait before they are answered (a slow collector).
    hold: asyncio.Event | None = None
    _runner: web.AppRunner | None = None
    _port: int = 0
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/traces", self._export)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _export(self, request: web.Request) -> web.Response:
        body = await request.read()
        encoding = request.headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if request.content_type != PROTOBUF:
            return web.Response(status=415)
        if self.hold is not None:
            await self.hold.wait()
        self.requests += 1
        self.spans.extend(_decode(ExportTraceServiceRequest.FromString(body)))
        self._arrived.set()
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type=PROTOBUF)

    def of_run(self, run_id: str) -> list[ReceivedSpan]:
        return [span for span in self.spans if span.run_id == run_id]

    async def wait_for(
        self, found: Callable[[list[ReceivedSpan]], bool], within: float = 10.0
    ) -> list[ReceivedSpan]:
        """Every span received, once `found` says they are enough."""
        async with asyncio.timeout(within):
            while not found(self.spans):
                self._arrived.clear()
                await self._arrived.wait()
        return self.spans

    async def wait_run(
        self, run_id: str, executions: int = 1, within: float = 10.0
    ) -> list[ReceivedSpan]:
        """The run's spans once `executions` root spans of it arrived (the root of an
        execution ends last, so its other spans came before it or with it)."""

        def roots(spans: list[ReceivedSpan]) -> int:
            return sum(1 for span in spans if span.run_id == run_id and is_root(span))

        await self.wait_for(lambda spans: roots(spans) >= executions, within)
        return self.of_run(run_id)
