"""Run the packaged Alembic migrations on an open connection (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any constant: serialises concurrent upgrades by several processes sharing one PostgreSQL.
_PG_LOCK_KEY = 0x706F7374726F6F6D  # "postroom"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> None:
    """Bring the schema to the newest revision, inside the caller's transaction.

    Idempotent: a database already at head is left untouched. On PostgreSQL a transaction-scoped
    advisory lock makes processes that start together take turns; on SQLite the caller's
    `BEGIN IMMEDIATE` does the same.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    current = current_revision(connection)
    if current == head_revision():
        return
    cfg = alembic_config(connection)
    # A database made now gets what is on by default for new ones only (SQLite's full-text
    # index, migration 0027); an existing one keeps its choice.
    cfg.attributes["new_database"] = current is None
    command.upgrade(cfg, "head")
