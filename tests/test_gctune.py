"""The collector is tuned while the server runs and put back when it stops."""

from __future__ import annotations

import asyncio
import gc

import httpx
import pytest

from app.gctune import tuned_gc
from app.main import create_app
from tests.conftest import make_settings
from tests.runs.conftest import SLOW, make_agent, wait_status


async def test_serving_applies_the_threshold_and_shutdown_restores_it(database_url: str) -> None:
    before = gc.get_threshold()
    assert before != (12_345, 7, 3)
    application = create_app(make_settings(database_url, gc_threshold=(12_345, 7, 3)))
    async with application.router.lifespan_context(application):
        assert gc.get_threshold() == (12_345, 7, 3)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


async def test_off_leaves_the_collector_alone(database_url: str) -> None:
    before = gc.get_threshold()
    application = create_app(make_settings(database_url, gc_threshold=None))
    async with application.router.lifespan_context(application):
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0


def test_a_failing_block_still_restores() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), tuned_gc((9_999, 9, 9)):
        assert gc.get_threshold() == (9_999, 9, 9)
        raise RuntimeError("boom")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_young_generation_grows_with_the_runs_in_flight() -> None:
    before = gc.get_threshold()
    with tuned_gc((10_000, 20, 10), objects_per_run=500) as young:
        assert young is not None
        young.resize(100)
        assert gc.get_threshold() == (60_000, 20, 10)
        young.resize(0)
        assert gc.get_threshold() == (10_000, 20, 10)
    assert gc.get_threshold() == before


def test_zero_objects_per_run_keeps_the_threshold() -> None:
    with tuned_gc((10_000, 20, 10), objects_per_run=0) as young:
        assert young is not None
        young.resize(100)
        assert gc.get_threshold() == (10_000, 20, 10)


async def test_serving_sizes_the_young_generation_to_live_runs(
    database_url: str, db_engine: object
) -> None:
    settings = make_settings(database_url, gc_threshold=(12_345, 7, 3), gc_objects_per_run=1_000)
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://agentd.test"
        ) as http,
    ):
        await make_agent(http, model_settings=SLOW)
        body = {"input": "one two three four", "background": True}
        run = (await http.post("/v1/agents/echo/runs", json=body)).json()
        assert gc.get_threshold() == (13_345, 7, 3)  # one run in flight
        await wait_status(http, run["run_id"], {"completed"})
        manager = application.state.manager
        # The run's end is stored a moment before its worker task finishes.
        for _ in range(500):
            if manager.in_flight == 0:
                break
            await asyncio.sleep(0.01)
        assert manager.in_flight == 0
        assert gc.get_threshold() == (12_345, 7, 3)
        with manager.admitting(), manager.admitting():  # runs being created count too
            assert gc.get_threshold() == (14_345, 7, 3)
        assert gc.get_threshold() == (12_345, 7, 3)
        missing = await http.post("/v1/agents/nobody/runs", json={"input": "x"})
        assert missing.status_code == 404
        assert gc.get_threshold() == (12_345, 7, 3)  # a failed creation leaves no load
        assert manager.on_load is not None
    assert application.state.manager.on_load is None
