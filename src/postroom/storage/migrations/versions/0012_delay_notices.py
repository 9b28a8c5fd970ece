"""Queue entries remember whether their sender was told of a delay (`delay_notified`): a
recipient deferred for long gets one delay notice (RFC 3464, Action: delayed), not one per
retry.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    with op.batch_alter_table("queue_entries") as batch:
        batch.add_column(
            sa.Column(
                "delay_notified",
                sa.Boolean(create_constraint=False),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("queue_entries") as batch:
        batch.drop_column("delay_notified")
