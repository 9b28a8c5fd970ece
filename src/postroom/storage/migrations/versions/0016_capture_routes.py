"""Capture routes: table `capture_routes`, the rules made in the admin pages or through
`/api/v2/capture-routes` that send mail of the capture door into a capture project by SMTP
user name or recipient (storage/capture_routes.py). Rows go with their project.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision: str | None = "0015"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "capture_routes",
        sa.Column("id", _SEQ, nullable=False, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("pattern", sa.String(320), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_capture_routes"),
        sa.ForeignKeyConstraint(
            ["project"],
            ["projects.id"],
            name="fk_capture_routes_project_projects",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("capture_routes")
