"""Per-project delivery settings: table `delivery_settings` (storage/delivery_settings.py),
today whether senders get bounce notices (RFC 3464 DSNs). No row: the defaults.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_settings",
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("bounce_notices", sa.Boolean(create_constraint=False), nullable=False),
        sa.PrimaryKeyConstraint("project", name="pk_delivery_settings"),
        sa.ForeignKeyConstraint(
            ["project"],
            ["projects.id"],
            name="fk_delivery_settings_project_projects",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("delivery_settings")
