"""Drop SQLite's FTS5 trigram table `messages_fts` and its triggers where the first form of
0018 created them: kept in the writer's transaction, it cost about 2 ms of CPU per 2 KB
message, a quarter of the capture door's acceptance rate (storage/fulltext.py). PostgreSQL:
nothing.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

from alembic import op

from postroom.storage import fulltext

revision = "0020"
down_revision: str | None = "0019"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in fulltext.sqlite_drop_statements():
            op.execute(statement)


def downgrade() -> None:
    """Nothing: the table is not brought back."""
