"""SQLite's full-text index (storage/fulltext.py) answers terms of one and two characters: the
indexed text ends with two more newlines, so a message holding such a term holds a trigram
starting with it, and the fts5vocab table `messages_fts_vi` reads the messages holding the
trigrams of that prefix (before, those terms scanned every message: 0.8-1.5 s at a million).

Where the database has the index, every message is indexed again with the new text in this
transaction (the table is contentless: a 'delete' must give the text that was indexed, so the
old rows cannot stay beside triggers building the new text): the triggers dropped, FTS5's
'delete-all', every message indexed, the waiting list cleared, the triggers and the vocab table
made. A database without the index gets nothing (`postroom fulltext on` makes the new form);
PostgreSQL nothing.

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

from alembic import op

from postroom.storage import fulltext

revision = "0029"
down_revision: str | None = "0028"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite" or not fulltext.sqlite_present(bind):
        return
    for statement in fulltext.sqlite_reindex_statements():
        op.execute(statement)


def downgrade() -> None:
    """The vocab table goes; the text keeps its last newlines (the triggers build it too)."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"DROP TABLE IF EXISTS {fulltext.VOCAB_TABLE}")
