"""The run service as a request dependency, for the native routes and every
protocol adapter."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.runs.service import RunService


def run_service(request: Request) -> RunService:
    """The process's run service (also for a route that takes the request itself)."""
    service: RunService = request.app.state.run_service
    return service


RunServiceDep = Annotated[RunService, Depends(run_service)]
