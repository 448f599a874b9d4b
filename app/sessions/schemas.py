"""Bodies of the sessions API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.engine.summary import SessionSummary


class SessionRead(BaseModel):
    session_id: str
    user_id: str | None = None
    agent_id: str | None = None
    session_state: dict[str, Any] = Field(default_factory=dict)
    active_run_id: str | None = None
    run_ids: list[str] = Field(default_factory=list)
    summary: SessionSummary | None = Field(
        default=None,
        description="The session's summary, rewritten after each run of an agent with "
        "`session_summary.enabled`.",
    )
    created_at: datetime
    updated_at: datetime


class SessionUpdate(BaseModel):
    """`session_state` is merged into the stored state (RFC 7386: null removes a key)."""

    model_config = ConfigDict(extra="forbid")

    session_state: dict[str, Any]


class SessionMessages(BaseModel):
    """The session's history as an input list, oldest first (like `to_input_list()`)."""

    session_id: str
    messages: list[dict[str, Any]]
