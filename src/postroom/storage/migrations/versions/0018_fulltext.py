"""Full-text index of messages (storage/fulltext.py): on PostgreSQL a pg_trgm GIN index on the
text columns (rows already stored are indexed by the upgrade). On SQLite nothing now: the
FTS5 trigram table this revision first created cost a quarter of the acceptance rate; 0020
drops it from databases that got it.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

from postroom.storage import fulltext

revision = "0018"
down_revision: str | None = "0017"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in fulltext.pg_create_statements():
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    statements = (
        fulltext.sqlite_drop_statements() if dialect == "sqlite" else fulltext.pg_drop_statements()
    )
    for statement in statements:
        op.execute(statement)
