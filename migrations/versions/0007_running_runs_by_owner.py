"""an index of the running runs by the worker holding them

Every few seconds each worker renews the leases of its running runs and looks
for cancels among them, both by `lease_owner`; with no index on it, each did a
scan of the whole runs table, whose cost grew with every run ever stored. A
partial index holds the running runs only, so it stays as small as the work
in flight.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 19:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.create_index(
        "ix_runs_lease_owner_running",
        "runs",
        ["lease_owner"],
        postgresql_where=RUNNING,
        sqlite_where=RUNNING,
    )


def downgrade() -> None:
    op.drop_index("ix_runs_lease_owner_running", table_name="runs")
