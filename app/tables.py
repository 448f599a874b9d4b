"""ORM tables: agents and their versions, sessions, runs, run events, session
messages, cancels of runs not created yet, idempotency keys, API keys, users'
memories.

Every agent, session, run and API key belongs to a tenant: agent and session
ids are unique within their tenant (part of the primary key), run ids are
unique everywhere. Runs and events are written often and read by seq; runs are
listed by tenant with session, agent, user and status, newest first, and
claimed by status and lease.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, JsonType, utcnow


class Agent(Base):
    """The newest version of each agent definition."""

    __tablename__ = "agents"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentVersion(Base):
    """Every version ever saved; a run pins the one it ran."""

    __tablename__ = "agent_versions"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"], ondelete="CASCADE"
        ),
    )


class Session(Base):
    """A conversation: its user, state, and the one run allowed to be active in it."""

    __tablename__ = "sessions"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(128))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Set with a compare-and-set UPDATE: at most one active run per session.
    active_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # {"summary", "topics", "updated_at"}, rewritten after each run of an agent with
    # session summaries.
    summary: Mapped[dict[str, Any] | None]

    __table_args__ = (
        Index("ix_sessions_tenant_id_user_id_created_at", "tenant_id", "user_id", "created_at"),
        Index("ix_sessions_tenant_id_agent_id_created_at", "tenant_id", "agent_id", "created_at"),
        Index("ix_sessions_tenant_id_created_at", "tenant_id", "created_at"),
        # The worker finds a run's session by id alone (migration 0006).
        Index("ix_sessions_id", "id"),
    )


class Run(Base):
    """One run of an agent: its request, live state, outcome and worker lease."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str] = mapped_column(String(64))
    agent_version: Mapped[int] = mapped_column(Integer)
    last_agent_id: Mapped[str | None] = mapped_column(String(64))
    session_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(200), default="")
    input: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"input": ..., "images": ...}
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)  # run options as sent
    content: Mapped[Any | None] = mapped_column(JsonType)
    content_type: Mapped[str] = mapped_column(String(200), default="str")
    output: Mapped[dict[str, Any] | None]  # RunOutput extras: tools, requirements, reasoning
    state: Mapped[dict[str, Any] | None]  # the engine's checkpoint (paused state included)
    error: Mapped[dict[str, Any] | None]
    metrics: Mapped[dict[str, Any] | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Worker lease: which process runs it, until when, and how often it was taken.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "session_id"], ["sessions.tenant_id", "sessions.id"], ondelete="CASCADE"
        ),
        Index("ix_runs_tenant_id_session_id_created_at", "tenant_id", "session_id", "created_at"),
        Index("ix_runs_tenant_id_agent_id_created_at", "tenant_id", "agent_id", "created_at"),
        Index("ix_runs_tenant_id_user_id_created_at", "tenant_id", "user_id", "created_at"),
        Index("ix_runs_tenant_id_status", "tenant_id", "status"),
        Index("ix_runs_tenant_id_id", "tenant_id", "id"),
        Index("ix_runs_session_id_created_at", "session_id", "created_at"),
        Index("ix_runs_status_created_at", "status", "created_at"),
        Index("ix_runs_status_lease_expires_at", "status", "lease_expires_at"),
        Index("ix_runs_created_at", "created_at"),
        # The worker's heartbeat: its running runs (a partial index, as small as the
        # work in flight).
        Index(
            "ix_runs_lease_owner_running",
            "lease_owner",
            postgresql_where=text("status = 'running'"),
            sqlite_where=text("status = 'running'"),
        ),
    )


class RunEvent(Base):
    """Every event of a run, in order. `data` is the event's JSON text, stored
    as serialized once so replays send the same bytes live subscribers saw."""

    __tablename__ = "run_events"

    run_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    type: Mapped[str] = mapped_column(String(48))
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SessionMessage(Base):
    """The history of a session, message by message, in the canonical shape."""

    __tablename__ = "session_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    message: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "session_id"], ["sessions.tenant_id", "sessions.id"], ondelete="CASCADE"
        ),
        Index("ix_session_messages_tenant_id_session_id_id", "tenant_id", "session_id", "id"),
        Index("ix_session_messages_session_id_id", "session_id", "id"),
        Index("ix_session_messages_run_id", "run_id"),
    )


class RunCancel(Base):
    """A cancel for a client-chosen run id that did not exist yet: a run created
    with that id while it is recent ends cancelled at once."""

    __tablename__ = "run_cancels"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyKey(Base):
    """A create or continue sent with `Idempotency-Key`: a retry with the same key
    and request is answered from the run it started, and starts nothing."""

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))  # the request's digest
    run_id: Mapped[str] = mapped_column(String(64))
    after_seq: Mapped[int] = mapped_column(Integer, default=0)  # where its answer starts
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ApiKey(Base):
    """A key stored for a tenant (and maybe one user of it): only its SHA-256 is
    kept, looked up by that hash. Deleting the row revokes the key."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(128))
    scopes: Mapped[list[Any]]
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_api_keys_tenant_id_id", "tenant_id", "id"),)


class UserMemory(Base):
    """A memory of a user of a tenant (Agno's user memories), optionally tagged
    with the agent that made it; memory ids are unique per tenant; listed by
    user, agent and topic, newest first."""

    __tablename__ = "memories"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    memory_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128))
    agent_id: Mapped[str | None] = mapped_column(String(64))
    memory: Mapped[str] = mapped_column(Text)
    topics: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_memories_tenant_id_user_id_created_at", "tenant_id", "user_id", "created_at"),
        Index("ix_memories_tenant_id_agent_id_created_at", "tenant_id", "agent_id", "created_at"),
        Index("ix_memories_tenant_id_created_at", "tenant_id", "created_at"),
    )
