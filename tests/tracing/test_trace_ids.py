"""Which trace a run's spans go to: `run_config.trace_id` in both spellings, the
caller's W3C `traceparent`, and what happens to malformed ones."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.tables import Run
from tests.fakes.otlp_receiver import OTLPReceiver, ReceivedSpan, is_root
from tests.tracing.conftest import create_agent, run

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def root_of(spans: list[ReceivedSpan]) -> ReceivedSpan:
    roots = [span for span in spans if is_root(span)]
    assert len(roots) == 1
    assert {span.trace_id for span in spans} == {roots[0].trace_id}
    return roots[0]


@pytest.mark.parametrize(
    "given", [TRACE, f"trace_{TRACE}", TRACE.upper(), f"trace_{TRACE.upper()}"]
)
async def test_run_config_trace_id_is_the_trace_in_either_spelling(
    traced: httpx.AsyncClient, receiver: OTLPReceiver, given: str
) -> None:
    await create_agent(traced, model="test:echo")
    output = await run(traced, run_config={"trace_id": given})
    root = root_of(await receiver.wait_run(output["run_id"]))
    assert root.trace_id == TRACE
    assert root.parent_span_id == ""


@pytest.mark.parametrize(
    "given",
    [
        "abc",
        TRACE[:-1],
        TRACE + "0",
        f"trace_{TRACE[:-1]}",
        f"span_{TRACE}",
        "g" * 32,
        "0" * 32,
        f"trace_{'0' * 32}",
        f" {TRACE}",
        12345,
    ],
)
async def test_a_malformed_trace_id_is_422_and_creates_nothing(
    traced: httpx.AsyncClient, db_engine: AsyncEngine, given: object
) -> None:
    await create_agent(traced, model="test:echo")
    response = await traced.post(
        "/v1/agents/helper/runs", json={"input": "hi", "run_config": {"trace_id": given}}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert [error["loc"] for error in problem["errors"]] == [["run_config", "trace_id"]]
    async with db_engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(Run)) == 0


async def test_traceparent_continues_the_callers_trace(
    traced: httpx.AsyncClient, receiver: OTLPReceiver
) -> None:
    await create_agent(traced, model="test:echo")
    headers = {"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"}
    output = await run(traced, headers=headers)
    root = root_of(await receiver.wait_run(output["run_id"]))
    assert (root.trace_id, root.parent_span_id) == (TRACE, CALLER_SPAN)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/responses", {"input": "hi"}),
    ],
)
async def test_traceparent_continues_the_callers_trace_through_the_openai_routes(
    traced: httpx.AsyncClient, receiver: OTLPReceiver, path: str, body: dict[str, object]
) -> None:
    await create_agent(traced, model="test:echo")
    headers = {"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"}
    response = await traced.post(path, json={"model": "helper", **body}, headers=headers)
    assert response.status_code == 200, response.text
    root = root_of(await receiver.wait_run(response.json()["id"]))  # its id is the run's
    assert (root.trace_id, root.parent_span_id) == (TRACE, CALLER_SPAN)


async def test_run_config_trace_id_wins_over_traceparent(
    traced: httpx.AsyncClient, receiver: OTLPReceiver
) -> None:
    await create_agent(traced, model="test:echo")
    mine = "a" * 32
    headers = {"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"}
    output = await run(traced, headers=headers, run_config={"trace_id": f"trace_{mine}"})
    root = root_of(await receiver.wait_run(output["run_id"]))
    assert (root.trace_id, root.parent_span_id) == (mine, "")


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"00-{TRACE}-{CALLER_SPAN}",  # no flags
        f"00-{TRACE.upper()}-{CALLER_SPAN}-01",  # W3C hex is lower case
        f"00-{'0' * 32}-{CALLER_SPAN}-01",  # invalid trace id
        f"00-{TRACE}-{'0' * 16}-01",  # invalid parent id
        f"ff-{TRACE}-{CALLER_SPAN}-01",  # forbidden version
        f"00-{TRACE}-{CALLER_SPAN}-01-extra",  # version 00 has four fields
        f"0-{TRACE}-{CALLER_SPAN}-01",
        f"00-{TRACE}x-{CALLER_SPAN}-01",
    ],
)
async def test_a_malformed_traceparent_is_ignored(
    traced: httpx.AsyncClient, receiver: OTLPReceiver, header: str
) -> None:
    await create_agent(traced, model="test:echo")
    output = await run(traced, headers={"traceparent": header})
    assert output["status"] == "completed"
    root = root_of(await receiver.wait_run(output["run_id"]))
    assert root.parent_span_id == ""
    assert root.trace_id not in (TRACE, "0" * 32)


async def test_a_caller_that_does_not_sample_gets_no_spans(
    traced: httpx.AsyncClient, receiver: OTLPReceiver
) -> None:
    """The default sampler follows the caller's decision (parent-based)."""
    await create_agent(traced, model="test:echo")
    unsampled = await run(traced, headers={"traceparent": f"00-{TRACE}-{CALLER_SPAN}-00"})
    sampled = await run(traced)
    await receiver.wait_run(sampled["run_id"])
    assert receiver.of_run(unsampled["run_id"]) == []
    assert TRACE not in {span.trace_id for span in receiver.spans}
