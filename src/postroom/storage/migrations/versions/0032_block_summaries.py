"""PostgreSQL: table `message_blocks`, which byte pairs each block of BLOCK messages holds, made
later by the server's job `pg-blocks` in a child process (storage/block_summaries.py), and the
trigger deleting a block's summary when a message's text changes. A search for a rare or
absent term of 1-2 characters then reads only the blocks that may hold it and the newest
messages (issue 12: `qz` read every message, 1.6-2.3 s at a million). Nothing on SQLite, whose
full-text index serves such terms (migration 0029).

Revision ID: 0032
Revises: 0031
"""

from __future__ import annotations

from alembic import op

from postroom.storage import block_summaries

revision = "0032"
down_revision: str | None = "0031"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in block_summaries.create_statements():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in block_summaries.drop_statements():
            op.execute(statement)
