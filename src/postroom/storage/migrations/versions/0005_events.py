"""The durable event log: table `events` (storage/events.py).

One row per state change others must hear about (send, delivery, deferred, bounce, expired,
...), written in the transaction of the change. No foreign key to `messages`: the log
outlives the messages it tells about.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    seq_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "events",
        sa.Column("id", seq_type, autoincrement=True, nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("message_id", sa.String(26), nullable=True),
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("recipient_lc", sa.Text(), nullable=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_project_id", "events", ["project", "id"])
    op.create_index("ix_events_project_time", "events", ["project", "time_us"])
    op.create_index("ix_events_project_recipient", "events", ["project", "recipient_lc"])
    op.create_index("ix_events_message_id", "events", ["message_id"])


def downgrade() -> None:
    op.drop_table("events")
