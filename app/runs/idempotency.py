"""Requests a client may send again: a create with a client-chosen `run_id`, and
a create or continue with an `Idempotency-Key`. The same request again is
answered from the run it started and starts nothing; the same id or key with
another request is refused (409 `run_exists`, 422 `idempotency_key_reused`).

A request is recognised by its fingerprint, a digest of what it asks; the key
is stored with the run it started, in the same transaction, so two replicas
receiving the same retry start one run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import IdempotencyKeyReused, RunExists
from app.runs import repository
from app.tables import Run
from app.worker import store

# What says where a request comes from, not what it asks: a retry may carry
# another (a new span of the caller's trace) and is still the same request.
NOT_ASKED = {"traceparent"}


def fingerprint(kind: str, target: str, *parts: BaseModel) -> str:
    """The digest of a request: its kind, what it acts on, and its bodies."""
    dumped = (part.model_dump(mode="json", exclude=NOT_ASKED) for part in parts)
    payload: list[Any] = [kind, target, *dumped]
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class Replay:
    """A request answered again: its run, and the seq its answer starts after."""

    run: Run
    after: int


async def find_create(
    session: AsyncSession, run_id: str | None, key: str | None, digest: str
) -> Replay | None:
    """The run this create started before, if it was sent already."""
    if key is not None:
        replay = await _find_key(session, key, digest)
        if replay is not None:
            return replay
    if run_id is not None:
        run = await store.get(session, run_id)  # ids are unique across tenants
        if run is not None:
            if await repository.get_visible(session, run_id) is None:
                raise RunExists(f"The run id {run_id!r} is taken.", extra={"run_id": run_id})
            if run.request.get("fingerprint") != digest:
                raise RunExists(
                    f"A run with id {run_id!r} exists, created by another request.",
                    extra={"run_id": run_id},
                )
            return Replay(run, 0)
    return None


async def find_continue(session: AsyncSession, key: str, digest: str) -> Replay | None:
    """The continuation this request made before, if it was sent already."""
    return await _find_key(session, key, digest)


async def _find_key(session: AsyncSession, key: str, digest: str) -> Replay | None:
    stored = await repository.find_idempotency_key(session, key)
    if stored is None:
        return None
    if stored.fingerprint != digest:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for another request in the last 24 hours."
        )
    run = await repository.get_visible(session, stored.run_id)
    return Replay(run, stored.after_seq) if run is not None else None
