"""Table `message_counts`: each project's number of messages and of unread ones, kept by
triggers on `messages` in the same transaction (storage/message_counts.py), and filled from the
messages already stored, so the inbox's `total` and `unread` are no longer counted over every
message (issue 12, search at a million).

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from postroom.storage import message_counts

revision = "0022"
down_revision: str | None = "0021"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "message_counts",
        sa.Column("seq", _SEQ, nullable=False, autoincrement=True),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("unread", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_message_counts"),
    )
    op.create_index("ix_message_counts_project", "message_counts", ["project"])
    for statement in message_counts.create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in message_counts.drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_index("ix_message_counts_project", table_name="message_counts")
    op.drop_table("message_counts")
