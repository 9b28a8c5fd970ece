"""Table `tag_counts`: each (project, tag)'s number of messages and of unread ones, kept by
triggers on `message_tags` and `messages` in the same transaction (storage/tag_counters.py),
and filled from the tags already stored, so `GET /api/v1/tag-counts` no longer joins every
tagged message (issue 12: 0.7 s with 100,000 tagged messages).

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from postroom.storage import tag_counters

revision = "0024"
down_revision: str | None = "0023"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tag_counts",
        sa.Column("seq", _SEQ, nullable=False, autoincrement=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("tag_lc", sa.Text, nullable=False),
        sa.Column("tag", sa.Text, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("unread", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_tag_counts"),
    )
    op.create_index("ix_tag_counts_project_tag", "tag_counts", ["project", "tag_lc", "tag"])
    for statement in tag_counters.create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in tag_counters.drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_index("ix_tag_counts_project_tag", table_name="tag_counts")
    op.drop_table("tag_counts")
