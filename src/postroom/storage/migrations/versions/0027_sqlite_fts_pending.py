"""SQLite's full-text index (storage/fulltext.py), second form: a new message waits in
`messages_fts_pending` and the writer indexes the waiting ones every DRAIN_EVERY messages in
one of its transactions (one FTS5 segment for all, instead of one per group-commit batch of
~6 messages), so the index costs acceptance a few per cent rather than 12-16%.

A new database gets the index (on by default); an existing one keeps its choice: where
`postroom fulltext on` made it, its triggers take the second form (the indexed rows stay);
elsewhere nothing changes. PostgreSQL: nothing.

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

from alembic import context, op

from postroom.storage import fulltext

revision = "0027"
down_revision: str | None = "0026"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_TRIGGERS = ("messages_fts_insert", "messages_fts_delete", "messages_fts_update")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if fulltext.sqlite_present(bind):
        for name in _TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute(f"CREATE TABLE IF NOT EXISTS {fulltext.PENDING_TABLE} (seq INTEGER PRIMARY KEY)")
        for statement in fulltext.sqlite_trigger_statements():
            op.execute(statement)
    elif context.config.attributes.get("new_database"):
        for statement in fulltext.sqlite_create_statements(index_stored=False):
            op.execute(statement)


def downgrade() -> None:
    """Nothing: the second form is kept (the first one is not brought back)."""
