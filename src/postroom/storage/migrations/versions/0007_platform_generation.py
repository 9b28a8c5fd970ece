"""A change counter for the platform: `platform_generation`, one row whose `value` the
database itself raises (triggers) in the same transaction as any change to projects, SMTP and
IP credentials, domains, DKIM keys and verified addresses, whoever writes them (this process,
another one, the CLI, plain SQL). Caches of those rows (the submission door's credential
checks, the pipeline's project snapshots) read the one number and re-read the rows only when
it moved. Recording a credential's last use (`last_used_us`) does not count as a change.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

# table -> the columns whose update is a change (None: any column)
WATCHED: dict[str, tuple[str, ...] | None] = {
    "projects": None,
    "smtp_credentials": ("id", "project", "username", "secret_digest", "allowed_from"),
    "ip_credentials": None,
    "domains": None,
    "dkim_keys": None,
    "verified_addresses": None,
}
_FUNCTION = "postroom_platform_changed"
_BUMP = "UPDATE platform_generation SET value = value + 1 WHERE id = 1"


def _trigger(table: str, event: str) -> str:
    return f"trg_{table}_{event.lower()}_generation"


def upgrade() -> None:
    op.create_table(
        "platform_generation",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_platform_generation"),
    )
    op.execute("INSERT INTO platform_generation (id, value) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for table, columns in WATCHED.items():
            update = "UPDATE" if columns is None else f"UPDATE OF {', '.join(columns)}"
            op.execute(
                f"CREATE TRIGGER {_trigger(table, 'change')} "
                f"AFTER INSERT OR {update} OR DELETE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
            )
        return
    for table, columns in WATCHED.items():  # SQLite: one trigger per event, per row
        for event in ("INSERT", "UPDATE", "DELETE"):
            what = event
            if event == "UPDATE" and columns is not None:
                what = f"UPDATE OF {', '.join(columns)}"
            op.execute(
                f"CREATE TRIGGER {_trigger(table, event)} AFTER {what} ON {table} "
                f"BEGIN {_BUMP}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS {_trigger(table, 'change')} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {_FUNCTION}()")
    else:
        for table in WATCHED:
            for event in ("INSERT", "UPDATE", "DELETE"):
                op.execute(f"DROP TRIGGER IF EXISTS {_trigger(table, event)}")
    op.drop_table("platform_generation")
