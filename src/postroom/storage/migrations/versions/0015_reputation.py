"""The reputation guard: columns `paused_us` and `pause_reason` of `projects` (set while the
guard has paused the project's sending; a change of `projects` raises the platform's change
counter, so open sessions see it at their next transaction) and table `reputation`, one row per
project the guard has judged: its `level` (ok, warning, paused), when that changed, from when
its rates count (`since_us`: the last resume, so old failures do not pause it again) and the
figures of the last change.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision: str | None = "0014"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it): the table, and its change-counter triggers, stay.
    op.add_column("projects", sa.Column("paused_us", sa.BigInteger, nullable=True))
    op.add_column("projects", sa.Column("pause_reason", sa.Text, nullable=True))
    op.create_table(
        "reputation",
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("changed_us", sa.BigInteger, nullable=False),
        sa.Column("since_us", sa.BigInteger, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("project", name="pk_reputation"),
        sa.ForeignKeyConstraint(
            ["project"], ["projects.id"], name="fk_reputation_project_projects", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("reputation")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("pause_reason")
        batch.drop_column("paused_us")
