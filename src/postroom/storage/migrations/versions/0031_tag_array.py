"""PostgreSQL: `messages.tags_lc`, each message's lower-cased tags as an array, kept by its
writers and by triggers on `message_tags` in the transaction of every change of its tags,
filled here for the tags already stored, and the partial GIN index on (tags_lc, the full-text
concatenation) over the tagged messages (storage/tag_array.py): a `tag:` term combined with a
text term that few of the tag's messages hold is answered from that index instead of a walk of
all the tag's messages (issue 12: `tag:archive subject:invoice` 2.4-2.9 s at a million
messages). SQLite changes nothing: it intersects its full-text candidates with the tag index
(storage/tag_search.py).

Revision ID: 0031
Revises: 0030
"""

from __future__ import annotations

from alembic import op

from postroom.storage import tag_array

revision = "0031"
down_revision: str | None = "0030"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for statement in tag_array.create_statements():
        op.execute(statement)
    # The planner's statistics of the new column and index, for a table that holds messages
    # only: an empty table analyzed is known to be empty, and the plans the writer's first
    # statements make then (the foreign keys' look-ups of `messages`) stay sequential scans
    # for the connection's life (the capture door's PostgreSQL CPU per message 0.2 -> 0.6-1.0
    # ms over 10,000 messages, bench/smtp_acceptance.py), where a table never analyzed is
    # assumed to have some pages and gets index look-ups.
    if bind.exec_driver_sql("SELECT EXISTS (SELECT 1 FROM messages)").scalar():
        op.execute("ANALYZE messages")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in tag_array.drop_statements():
        op.execute(statement)
