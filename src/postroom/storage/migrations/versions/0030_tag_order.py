"""`message_tags` holds its message's page order key (`created_us`, `seq`), filled here from
the messages for the tags already stored, and `ix_message_tags_project_tag` becomes
(project, tag_lc, created_us, seq): a `tag:` search reads the tag's messages newest first
from it (storage/tag_search.py) instead of walking the project's messages newest first until
50 have the tag, which read almost every message when a common tag is only on old ones
(issue 12: the first page of any `tag:` search in < 100 ms at a million messages).

SQLite cannot add a NOT NULL column without a default: its columns get DEFAULT 0, which no
writer relies on (each gives the message's values, storage/batch.py, store.py, notice_writer.py).
The backfill's UPDATE runs the tag counters' UPDATE trigger, which nets to no change.

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision: str | None = "0029"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_INDEX = "ix_message_tags_project_tag"
_BACKFILL = """UPDATE message_tags SET created_us = m.created_us, seq = m.seq
FROM messages AS m WHERE m.id = message_tags.message_id"""


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    seq_type = sa.Integer() if sqlite else sa.BigInteger()
    if sqlite:
        # SQLite adds a NOT NULL column only with a default (overwritten just below).
        op.execute("ALTER TABLE message_tags ADD COLUMN created_us BIGINT NOT NULL DEFAULT 0")
        op.execute("ALTER TABLE message_tags ADD COLUMN seq INTEGER NOT NULL DEFAULT 0")
    else:
        op.add_column("message_tags", sa.Column("created_us", sa.BigInteger(), nullable=True))
        op.add_column("message_tags", sa.Column("seq", seq_type, nullable=True))
    op.drop_index(_INDEX, table_name="message_tags")
    op.execute(_BACKFILL)
    if not sqlite:
        op.alter_column("message_tags", "created_us", nullable=False)
        op.alter_column("message_tags", "seq", nullable=False)
        op.execute("ANALYZE message_tags")  # the planner's statistics of the new columns
    op.create_index(_INDEX, "message_tags", ["project", "tag_lc", "created_us", "seq"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="message_tags")
    op.drop_column("message_tags", "seq")
    op.drop_column("message_tags", "created_us")
    op.create_index(_INDEX, "message_tags", ["project", "tag_lc"])
