"""A project's IP pool: column `ip_pool` of `delivery_settings` (the name of a pool of
`--ip-pools`; NULL: the default pool).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision: str | None = "0013"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_settings") as batch:
        batch.add_column(sa.Column("ip_pool", sa.String(63), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_settings") as batch:
        batch.drop_column("ip_pool")
