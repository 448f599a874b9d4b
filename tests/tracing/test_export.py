"""How spans leave: nothing at all without OTEL_* (the SDK not even imported); a
slow or unreachable collector never holds a run up; spans without room in the
queue or whose export failed are counted in /metrics; a stop waits a bounded
time; settings the SDK cannot use stop start-up with one line."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.config import BadSettings
from app.main import create_app
from tests.conftest import make_settings
from tests.fakes import FakeOpenAIServer
from tests.fakes.otlp_receiver import OTLPReceiver
from tests.replicas.conftest import free_port
from tests.tracing.conftest import create_agent, run, started_app

ROOT = Path(__file__).resolve().parents[2]

WITHOUT_OTEL = """
import asyncio, json, sys
import httpx
from app.config import Settings
from app.main import create_app

async def main():
    app = create_app(Settings(database_url=sys.argv[1], seed_demo_agent=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.post("/v1/agents", json={"id": "e", "model": "test:echo"})
            run = (await client.post("/v1/agents/e/runs", json={"input": "hi"})).json()
            metrics = (await client.get("/metrics")).text
        print(json.dumps({
            "status": run["status"],
            "tracer": type(app.state.runner.tracer).__name__,
            "sdk": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")),
            "metrics": "agentd_trace" in metrics,
        }))

asyncio.run(main())
"""


EXPORTED = "agentd_trace_spans_exported"


async def metrics_when(client: httpx.AsyncClient, ready: Callable[[str], bool]) -> str:
    """/metrics once `ready` says so (10 s at most)."""
    async with asyncio.timeout(10):
        while True:
            metrics = (await client.get("/metrics")).text
            if ready(metrics):
                return metrics
            await asyncio.sleep(0.05)


def counter(metrics: str, name: str, reason: str | None = None) -> float:
    labels = f'{{reason="{reason}"}}' if reason else ""
    match = re.search(rf"^{name}_total{re.escape(labels)} (\S+)$", metrics, re.MULTILINE)
    assert match is not None, metrics
    return float(match.group(1))


def test_without_otel_variables_nothing_is_traced_and_the_sdk_is_not_loaded(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    url = f"sqlite+aiosqlite:///{tmp_path}/agentd.db"
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OTEL, url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"status": "completed", "tracer": "_NoTracer", "sdk": [], "metrics": False}


async def test_a_slow_collector_holds_no_run_and_a_full_queue_drops_counted_spans(
    otel_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    db_engine: object,
    receiver: OTLPReceiver,
    fake: FakeOpenAIServer,
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "2")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2")
    receiver.hold = asyncio.Event()  # the first export waits until released
    async with started_app(database_url, fake) as (_app, client):
        await create_agent(client, model="test:echo")
        started = time.monotonic()
        outputs = [await run(client, input=f"run {n}") for n in range(4)]
        elapsed = time.monotonic() - started
        assert [output["status"] for output in outputs] == ["completed"] * 4
        assert elapsed < 3  # four runs while the collector answers nothing
        metrics = (await client.get("/metrics")).text
        # A run ends three spans; the queue holds two, and its first batch is stuck.
        assert counter(metrics, "agentd_trace_spans_dropped", "queue_full") >= 4
        assert counter(metrics, EXPORTED) == 0
        receiver.hold.set()
        await receiver.wait_for(lambda spans: len(spans) >= 2)
        metrics = await metrics_when(
            client, lambda text: counter(text, EXPORTED) >= len(receiver.spans)
        )
    assert counter(metrics, "agentd_trace_spans_dropped", "export_failed") == 0


async def test_an_unreachable_collector_fails_no_run_and_its_spans_are_counted(
    otel_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    db_engine: object,
    fake: FakeOpenAIServer,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0.5")
    async with started_app(database_url, fake) as (_app, client):
        await create_agent(client, model="test:echo")
        started = time.monotonic()
        output = await run(client)
        assert output["status"] == "completed"
        assert time.monotonic() - started < 2
        await metrics_when(
            client, lambda text: counter(text, "agentd_trace_spans_dropped", "export_failed") >= 3
        )
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 7  # a stop waits for the queue 5 s at most


async def test_a_stop_waits_for_a_stuck_collector_a_bounded_time(
    otel_env: dict[str, str],
    database_url: str,
    db_engine: object,
    receiver: OTLPReceiver,
    fake: FakeOpenAIServer,
) -> None:
    receiver.hold = asyncio.Event()
    async with started_app(database_url, fake) as (_app, client):
        await create_agent(client, model="test:echo")
        await run(client)
        await asyncio.sleep(0.2)  # its spans are being exported: the collector holds them
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 7
    receiver.hold.set()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OTEL_TRACES_EXPORTER", "zipkin", "unknown exporter 'zipkin' (otlp, console or none)"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "'grpc' is not supported (http/protobuf)"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots", "must be a positive integer"),
    ],
)
def test_otel_settings_that_cannot_be_used_stop_start_up_with_one_line(
    otel_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    database_url: str,
    name: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(BadSettings):
        create_app(make_settings(database_url))
    assert capsys.readouterr().err == f"agentd: invalid settings: {name}: {message}\n"


async def test_otel_traces_exporter_none_turns_tracing_off(
    otel_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    db_engine: object,
    receiver: OTLPReceiver,
    fake: FakeOpenAIServer,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    async with started_app(database_url, fake) as (app, client):
        assert not app.state.tracing.enabled
        await create_agent(client, model="test:echo")
        await run(client)
    assert receiver.spans == []


async def test_metrics_show_the_spans_exported(
    traced: httpx.AsyncClient, receiver: OTLPReceiver
) -> None:
    await create_agent(traced, model="test:echo")
    output = await run(traced)
    spans = await receiver.wait_run(output["run_id"])
    assert len(spans) == 3
    # Counted once the collector's answer is read, a moment after it received them.
    metrics = await metrics_when(traced, lambda text: counter(text, EXPORTED) >= 3)
    assert counter(metrics, EXPORTED) == 3
    assert counter(metrics, "agentd_trace_spans_dropped", "queue_full") == 0
