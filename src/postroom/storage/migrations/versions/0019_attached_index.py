"""Index `ix_messages_project_attached`: (project, created_us, seq, read) of the messages with
an attachment, so that `has:attachment` reads its page and its counts from the index instead of
every message (issue 12, search at a million).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision: str | None = "0018"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_ATTACHED = sa.text("attachment_count > 0")


def upgrade() -> None:
    op.create_index(
        "ix_messages_project_attached",
        "messages",
        ["project", "created_us", "seq", "read"],
        sqlite_where=_ATTACHED,
        postgresql_where=_ATTACHED,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_project_attached", table_name="messages")
