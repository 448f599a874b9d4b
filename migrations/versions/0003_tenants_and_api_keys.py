"""tenants and API keys

Every agent, agent version, session, run, session message, pending cancel and
idempotency key gets a `tenant_id` (existing rows: `default`); agent and
session ids, the run ids of pending cancels and idempotency keys become unique
per tenant (part of the primary key), so the references to agents and sessions
carry the tenant. API keys are stored as hashes. The memories table does not
exist yet: 0004 creates it with its `tenant_id`.

On SQLite the tables are rebuilt (batch mode) with foreign keys off, as
`app.migrate` runs every migration there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 11:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TENANT = sa.String(length=64)
# Tables that get a tenant_id, children after the tables they reference.
TENANT_TABLES = ("agents", "agent_versions", "sessions", "runs", "session_messages")
# Tables whose key gains the tenant: (table, primary key columns after the tenant).
PER_TENANT_KEYS = (("run_cancels", ("run_id",)), ("idempotency_keys", ("key",)))


def _add_tenant(table: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.add_column(
            sa.Column("tenant_id", TENANT, nullable=False, server_default="default")
        )


def _drop_default(table: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.alter_column("tenant_id", existing_type=TENANT, server_default=None)


def upgrade() -> None:
    for table in TENANT_TABLES:
        _add_tenant(table)
    # The references to agents and sessions go before their keys change.
    with op.batch_alter_table("agent_versions") as batch:
        batch.drop_constraint("fk_agent_versions_agent_id_agents", type_="foreignkey")
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("fk_runs_session_id_sessions", type_="foreignkey")
    with op.batch_alter_table("session_messages") as batch:
        batch.drop_constraint("fk_session_messages_session_id_sessions", type_="foreignkey")

    with op.batch_alter_table("agents") as batch:
        batch.drop_constraint("pk_agents", type_="primary")
        batch.create_primary_key("pk_agents", ["tenant_id", "id"])
    with op.batch_alter_table("agent_versions") as batch:
        batch.drop_constraint("pk_agent_versions", type_="primary")
        batch.create_primary_key("pk_agent_versions", ["tenant_id", "agent_id", "version"])
        batch.create_foreign_key(
            "fk_agent_versions_tenant_id_agents",
            "agents",
            ["tenant_id", "agent_id"],
            ["tenant_id", "id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("sessions") as batch:
        batch.drop_constraint("pk_sessions", type_="primary")
        batch.create_primary_key("pk_sessions", ["tenant_id", "id"])
        batch.drop_index("ix_sessions_user_id_created_at")
        batch.drop_index("ix_sessions_agent_id_created_at")
        batch.drop_index("ix_sessions_created_at")
        batch.create_index(
            "ix_sessions_tenant_id_user_id_created_at", ["tenant_id", "user_id", "created_at"]
        )
        batch.create_index(
            "ix_sessions_tenant_id_agent_id_created_at", ["tenant_id", "agent_id", "created_at"]
        )
        batch.create_index("ix_sessions_tenant_id_created_at", ["tenant_id", "created_at"])
    with op.batch_alter_table("runs") as batch:
        batch.create_foreign_key(
            "fk_runs_tenant_id_sessions",
            "sessions",
            ["tenant_id", "session_id"],
            ["tenant_id", "id"],
            ondelete="CASCADE",
        )
        batch.drop_index("ix_runs_session_id_created_at")
        batch.drop_index("ix_runs_agent_id_created_at")
        batch.drop_index("ix_runs_user_id_created_at")
        batch.create_index(
            "ix_runs_tenant_id_session_id_created_at", ["tenant_id", "session_id", "created_at"]
        )
        batch.create_index(
            "ix_runs_tenant_id_agent_id_created_at", ["tenant_id", "agent_id", "created_at"]
        )
        batch.create_index(
            "ix_runs_tenant_id_user_id_created_at", ["tenant_id", "user_id", "created_at"]
        )
        batch.create_index("ix_runs_tenant_id_status", ["tenant_id", "status"])
        batch.create_index("ix_runs_tenant_id_id", ["tenant_id", "id"])
    with op.batch_alter_table("session_messages") as batch:
        batch.create_foreign_key(
            "fk_session_messages_tenant_id_sessions",
            "sessions",
            ["tenant_id", "session_id"],
            ["tenant_id", "id"],
            ondelete="CASCADE",
        )
        batch.drop_index("ix_session_messages_session_id_id")
        batch.create_index(
            "ix_session_messages_tenant_id_session_id_id", ["tenant_id", "session_id", "id"]
        )
    for table, key in PER_TENANT_KEYS:
        _add_tenant(table)
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["tenant_id", *key])
    for table in (*TENANT_TABLES, *(table for table, _ in PER_TENANT_KEYS)):
        _drop_default(table)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", TENANT, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("scopes", JSON_TYPE, nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index("ix_api_keys_tenant_id_id", "api_keys", ["tenant_id", "id"])


def downgrade() -> None:
    """Back to one tenant: rows of any tenant but `default` are deleted."""
    op.drop_index("ix_api_keys_tenant_id_id", table_name="api_keys")
    op.drop_table("api_keys")
    for table, key in PER_TENANT_KEYS:
        op.execute(sa.text(f"DELETE FROM {table} WHERE tenant_id <> 'default'"))
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", list(key))
            batch.drop_column("tenant_id")
    for table in reversed(TENANT_TABLES):
        op.execute(sa.text(f"DELETE FROM {table} WHERE tenant_id <> 'default'"))

    with op.batch_alter_table("session_messages") as batch:
        batch.drop_constraint("fk_session_messages_tenant_id_sessions", type_="foreignkey")
        batch.drop_index("ix_session_messages_tenant_id_session_id_id")
        batch.create_index("ix_session_messages_session_id_id", ["session_id", "id"])
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint("fk_runs_tenant_id_sessions", type_="foreignkey")
        for name in (
            "ix_runs_tenant_id_session_id_created_at",
            "ix_runs_tenant_id_agent_id_created_at",
            "ix_runs_tenant_id_user_id_created_at",
            "ix_runs_tenant_id_status",
            "ix_runs_tenant_id_id",
        ):
            batch.drop_index(name)
        batch.create_index("ix_runs_session_id_created_at", ["session_id", "created_at"])
        batch.create_index("ix_runs_agent_id_created_at", ["agent_id", "created_at"])
        batch.create_index("ix_runs_user_id_created_at", ["user_id", "created_at"])
    with op.batch_alter_table("agent_versions") as batch:
        batch.drop_constraint("fk_agent_versions_tenant_id_agents", type_="foreignkey")
        batch.drop_constraint("pk_agent_versions", type_="primary")
        batch.create_primary_key("pk_agent_versions", ["agent_id", "version"])
    with op.batch_alter_table("agents") as batch:
        batch.drop_constraint("pk_agents", type_="primary")
        batch.create_primary_key("pk_agents", ["id"])
    with op.batch_alter_table("sessions") as batch:
        batch.drop_constraint("pk_sessions", type_="primary")
        batch.create_primary_key("pk_sessions", ["id"])
        batch.drop_index("ix_sessions_tenant_id_user_id_created_at")
        batch.drop_index("ix_sessions_tenant_id_agent_id_created_at")
        batch.drop_index("ix_sessions_tenant_id_created_at")
        batch.create_index("ix_sessions_user_id_created_at", ["user_id", "created_at"])
        batch.create_index("ix_sessions_agent_id_created_at", ["agent_id", "created_at"])
        batch.create_index("ix_sessions_created_at", ["created_at"])

    with op.batch_alter_table("agent_versions") as batch:
        batch.create_foreign_key(
            "fk_agent_versions_agent_id_agents",
            "agents",
            ["agent_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("runs") as batch:
        batch.create_foreign_key(
            "fk_runs_session_id_sessions", "sessions", ["session_id"], ["id"], ondelete="CASCADE"
        )
    with op.batch_alter_table("session_messages") as batch:
        batch.create_foreign_key(
            "fk_session_messages_session_id_sessions",
            "sessions",
            ["session_id"],
            ["id"],
            ondelete="CASCADE",
        )
    for table in reversed(TENANT_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("tenant_id")
