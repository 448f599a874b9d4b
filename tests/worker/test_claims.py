"""Taking over the runs of a lost worker: a few per sweep, so that the runs of a
dead replica spread over the live ones instead of all moving to the first that
noticed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.main import create_app
from app.tables import Run
from app.worker.claims import TAKEOVER_BATCH
from app.worker.manager import RunManager
from tests.conftest import make_settings, served
from tests.worker.helpers import store_runs


@pytest.fixture
async def unswept(database_url: str, db_engine: AsyncEngine) -> AsyncIterator[FastAPI]:
    """The app without its own sweeps meanwhile: the test calls them."""
    async with served(create_app(make_settings(database_url, sweep_interval=3600))) as app:
        yield app


async def test_orphaned_runs_are_taken_over_a_batch_at_a_time(
    unswept: FastAPI, db_engine: AsyncEngine
) -> None:
    app = unswept
    manager: RunManager = app.state.manager
    orphans = {f"r{index:02}": f"s{index:02}" for index in range(TAKEOVER_BATCH * 2 + 2)}
    # Held by a worker that is gone: no lease expiry recorded, so they are stale now.
    await store_runs(app.state.sessionmaker, orphans, owner="dead-worker")
    taken = [await manager.take_over_stale() for _ in range(4)]
    # (The worker's own sweeper may take a batch between these calls too.)
    assert taken[0] == TAKEOVER_BATCH
    assert all(count <= TAKEOVER_BATCH for count in taken)
    assert taken[-1] == 0
    async with db_engine.connect() as conn:
        owners = set((await conn.execute(select(Run.lease_owner, Run.attempt))).all())
    # Every run was taken once (attempt 2), by this worker or already ended by it.
    assert {attempt for _, attempt in owners} == {2}
    assert "dead-worker" not in {owner for owner, _ in owners}
