"""Liveness and readiness."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from app.errors import ServiceUnavailable, problems
from app.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])
log = logging.getLogger("agentd")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses=problems({503: "Database unreachable or schema behind (`not_ready`)."}),
)
async def readyz(request: Request) -> dict[str, str]:
    """The database answers and its schema is at the newest revision."""
    try:
        revision = await current_revision(request.app.state.engine)
    except Exception as exc:
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        raise ServiceUnavailable("The database is unreachable.") from None
    head = head_revision()
    if revision != head:
        raise ServiceUnavailable(f"The schema is at revision {revision}, not {head}.")
    return {"status": "ready", "revision": revision or ""}
