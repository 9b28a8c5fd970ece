"""Where the suppression feed stopped reading the event log: table `suppression_feed`.

One row per feed (`name`), with the id of the last event it has read, so that a restart goes
on from there and never adds again an entry an operator has removed since.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "suppression_feed",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_suppression_feed"),
    )


def downgrade() -> None:
    op.drop_table("suppression_feed")
