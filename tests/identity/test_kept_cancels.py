"""A cancel sent before its run exists belongs to the tenant that sent it: a run
created with that id in another tenant is not cancelled by it, and the
tenant's own run is; also when the run is stored in a group, whose writer acts
for whichever request started it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.db import utcnow
from app.principal import SCOPES, Principal, acting_as
from app.runs import records, repository
from app.runs.repository import Held
from app.runs.schemas import RunCreate, RunExtras
from app.tables import RunCancel
from tests.identity.conftest import bearer, hs256

ACME = bearer(hs256({"tenant_id": "acme", "scope": "admin"}))
GLOBEX = bearer(hs256({"tenant_id": "globex", "scope": "admin"}))


async def test_a_kept_cancel_ends_only_its_own_tenants_run(http: httpx.AsyncClient) -> None:
    for headers in (ACME, GLOBEX):
        agent = {"id": "echo", "name": "Echo", "model": "test:echo"}
        assert (await http.post("/v1/agents", json=agent, headers=headers)).status_code == 201
        # The agent read once: the runs after are stored in groups.
        warm = await http.post("/v1/agents/echo/runs", json={"input": "hi"}, headers=headers)
        assert warm.json()["status"] == "completed"
    chosen = [f"chosen-run-{n}" for n in range(4)]
    for run_id in chosen:
        kept = await http.post(f"/v1/runs/{run_id}/cancel", headers=ACME)
        assert kept.status_code == 404
        assert "ends cancelled" in kept.json()["detail"]

    def create(headers: dict[str, str], run_id: str | None = None) -> Awaitable[httpx.Response]:
        body = {"input": "hi", "background": True, **({"run_id": run_id} if run_id else {})}
        return http.post("/v1/agents/echo/runs", json=body, headers=headers)

    answers = await asyncio.gather(
        *(create(ACME) for _ in range(4)), *(create(GLOBEX, run_id) for run_id in chosen)
    )
    assert [answer.status_code for answer in answers] == [202] * 8
    for run_id in chosen:
        run = await _ended(http, run_id, GLOBEX)
        assert run["status"] == "completed", run
    # acme's cancels are still kept for acme; acme cannot create those ids (taken),
    # so a fresh id shows them used the other way round: acme's own run is cancelled.
    own = "chosen-run-own"
    assert (await http.post(f"/v1/runs/{own}/cancel", headers=ACME)).status_code == 404
    created = await create(ACME, own)
    assert created.status_code == 202
    assert (await _ended(http, own, ACME))["status"] == "cancelled"


async def _ended(http: httpx.AsyncClient, run_id: str, headers: dict[str, str]) -> dict[str, str]:
    for _ in range(500):
        run: dict[str, str] = (await http.get(f"/v1/runs/{run_id}", headers=headers)).json()
        if run["status"] not in ("queued", "running"):
            return run
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} did not end")


async def test_a_run_stored_in_a_group_uses_up_its_own_tenants_cancel_only(
    keyed_app: FastAPI, http: httpx.AsyncClient
) -> None:
    """The group's writer acts for whichever request started it: a run is stored
    by what its own parameters say, whoever that principal is."""
    agent = {"id": "echo", "name": "Echo", "model": "test:echo"}
    assert (await http.post("/v1/agents", json=agent, headers=GLOBEX)).status_code == 201
    runner, maker = keyed_app.state.runner, keyed_app.state.sessionmaker
    async with maker() as db, db.begin():
        for tenant_id, run_id in (("acme", "kept-by-acme"), ("globex", "kept-by-globex")):
            db.add(RunCancel(tenant_id=tenant_id, run_id=run_id, created_at=utcnow()))
    outcomes = {}
    for run_id in ("kept-by-acme", "kept-by-globex"):
        with acting_as(Principal("globex", None, SCOPES)):
            async with keyed_app.state.engine.connect() as conn:
                current = await keyed_app.state.agents.current(conn, "echo")
            body = RunCreate(input="hi")
            run, values, _ = records.new_run(runner, current.spec, body, RunExtras(run_id=run_id))
            params = repository.hold_and_insert_params(
                records.new_session(run, body),
                values,
                agent_version=current.spec.version,
                agent_updated_at=current.updated_at,
                owner=None,
            )
        with acting_as(Principal("acme", None, SCOPES)):  # the writer's, say
            async with keyed_app.state.engine.connect() as conn:
                outcomes[run_id] = await repository.hold_and_insert(conn, params, chosen_id=True)
                await conn.commit()
    assert outcomes == {"kept-by-acme": Held(True, False), "kept-by-globex": Held(True, True)}
    async with maker() as db:
        kept = (await db.execute(select(RunCancel.tenant_id, RunCancel.run_id))).all()
    assert kept == [("acme", "kept-by-acme")]
