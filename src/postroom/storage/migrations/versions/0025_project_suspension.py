"""An administrator's suspension of a project's sending: columns `suspended_us` (when; NULL:
not suspended) and `suspend_reason` of `projects`. Unlike the reputation guard's pause
(`paused_us`, migration 0015), nothing sets or lifts it but an admin (CLI, management API,
admin page). Any change of `projects` raises the platform's change counter (migration 0007's
trigger covers every column of that table), so the send doors' cached project snapshots are
dropped and the very next message of the project is refused: the suspension needs no trigger
of its own. Plain ADD COLUMN (SQLite has it): the table and its triggers stay.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision: str | None = "0024"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    op.add_column("projects", sa.Column("suspended_us", sa.BigInteger, nullable=True))
    op.add_column("projects", sa.Column("suspend_reason", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("suspend_reason")
        batch.drop_column("suspended_us")
