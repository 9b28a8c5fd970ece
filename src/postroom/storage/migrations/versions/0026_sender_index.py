"""SQLite: index `ix_messages_project_from` (project, from_text, created_us, seq, read), so a
`from:` search finds the project's distinct senders that match (a walk of the index, one step
per sender) and reads their messages from it, instead of walking every message (storage/
sender_search.py; issue 12, search at a million). Partial on `from_text IS NOT NULL` (every
row), which only that module's queries state, so no other query of a project picks it.

PostgreSQL gets nothing: its `from:` is answered by the trigram index of migration 0018, and a
B-tree entry there is limited to about 2.7 KB, which a long From header would exceed (SQLite
has no such limit).

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

from alembic import op

from postroom.storage.sender_search import create_statement, drop_statement

revision = "0026"
down_revision: str | None = "0025"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(create_statement())


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(drop_statement())
