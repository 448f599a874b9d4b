"""`GET /metrics`: Prometheus text with the service's own figures and the process's."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.runs.conftest import make_agent


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def test_metrics_count_runs_by_how_they_ended(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    assert before["agentd_runs_in_flight"] == 0
    assert before["agentd_runs_capacity"] >= 1
    assert before["agentd_runs_ended_total{status=completed}"] == 0
    assert "process_resident_memory_bytes" in before
    assert "python_gc_collections_total{generation=0}" in before

    await make_agent(client)
    for _ in range(2):
        run = await client.post("/v1/agents/echo/runs", json={"input": "hi"})
        assert run.json()["status"] == "completed"
    failing = await client.post(
        "/v1/agents/echo/runs",
        json={"input": "hi", "run_config": {"model_settings": {"fail": "boom"}}},
    )
    assert failing.json()["status"] == "error"

    after = await scrape(client)
    assert after["agentd_runs_ended_total{status=completed}"] == 2
    assert after["agentd_runs_ended_total{status=error}"] == 1
    assert after["agentd_runs_ended_total{status=cancelled}"] == 0
    assert after["agentd_runs_in_flight"] == 0
    assert after["agentd_event_channels"] == 0
    assert after["agentd_db_pool_size"] >= 1
    assert after["agentd_db_connections_in_use"] >= 0
    # test:echo streams no HTTP body: no read was held, and the loop has room
    assert after["agentd_model_read_pacing"] == 0
    assert after["agentd_model_reads_held_total"] == 0
