"""user memories

Each memory belongs to a tenant like every other row since 0003: `tenant_id`
is part of the primary key (memory ids are unique per tenant) and leads every
index. The table is new, so no row needs the `default` tenant filled in and
the column has no server default (0003's end state for the other tables).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "memories",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("memory_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("memory", sa.Text(), nullable=False),
        sa.Column("topics", JSON_TYPE, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "memory_id", name=op.f("pk_memories")),
    )
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.create_index(
            "ix_memories_tenant_id_user_id_created_at",
            ["tenant_id", "user_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_memories_tenant_id_agent_id_created_at",
            ["tenant_id", "agent_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_memories_tenant_id_created_at", ["tenant_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("memories", schema=None) as batch_op:
        batch_op.drop_index("ix_memories_tenant_id_created_at")
        batch_op.drop_index("ix_memories_tenant_id_agent_id_created_at")
        batch_op.drop_index("ix_memories_tenant_id_user_id_created_at")
    op.drop_table("memories")
