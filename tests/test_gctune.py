"""The collector is tuned while the server runs and put back when it stops."""

from __future__ import annotations

import gc

import pytest

from app.gctune import tuned_gc
from app.main import create_app
from tests.conftest import make_settings


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
