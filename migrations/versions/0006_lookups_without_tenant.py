"""indexes for the lookups the worker makes without a tenant

The worker acts on a run it has claimed, outside any request, and finds its
session, the session's messages and the session's other runs by session id
alone; since the tenant leads the sessions' key and the per-tenant indexes,
those statements scanned whole tables on PostgreSQL.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 17:08:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_sessions_id", "sessions", ["id"])
    op.create_index("ix_runs_session_id_created_at", "runs", ["session_id", "created_at"])
    op.create_index(
        "ix_session_messages_session_id_id", "session_messages", ["session_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_session_messages_session_id_id", table_name="session_messages")
    op.drop_index("ix_runs_session_id_created_at", table_name="runs")
    op.drop_index("ix_sessions_id", table_name="sessions")
