"""client-chosen run ids (64 characters), cancels of runs not created yet, idempotency keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Columns holding a run id: client-chosen ids take up to 64 characters.
RUN_ID_COLUMNS = (
    ("runs", "id"),
    ("sessions", "active_run_id"),
    ("run_events", "run_id"),
    ("session_messages", "run_id"),
)


def _resize_run_ids(length: int) -> None:
    for table, column in RUN_ID_COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.String(length=40 if length == 64 else 64),
                type_=sa.String(length=length),
            )


def upgrade() -> None:
    _resize_run_ids(64)
    op.create_table(
        "run_cancels",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_cancels")),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("after_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_idempotency_keys")),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_keys_created_at"), ["created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_keys_created_at"))
    op.drop_table("idempotency_keys")
    op.drop_table("run_cancels")
    _resize_run_ids(40)
