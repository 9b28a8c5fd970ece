"""The suppression list: table `suppressions` (storage/suppressions.py).

One row per (scope, lower-cased address); the scope is a project id or `*` for the account.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("scope", sa.String(100), nullable=False),
        sa.Column("address_lc", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=True),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("scope", "address_lc", name="pk_suppressions"),
    )
    op.create_index("ix_suppressions_address", "suppressions", ["address_lc"])


def downgrade() -> None:
    op.drop_table("suppressions")
