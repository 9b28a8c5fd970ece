"""Each project's number of messages and of unread ones, kept by triggers on `messages` in the
transaction that changes them (migration 0022), so the inbox's `total` and `unread` are read
in O(1) instead of counted over every message (issue 12, search at a million).

Table `message_counts` holds rows (project, total, unread) whose sums per project are the
counts; every path that inserts, deletes or changes `read`/`project` of a message is covered
because the database itself runs the triggers (the writer, the bulk and search deletes,
retention, a project's deletion).

* SQLite (one writer at a time): one row per project, kept by row triggers (an UPDATE of a row
  already in the transaction's pages: a few microseconds per message).
* PostgreSQL: statement triggers with transition tables append one delta row per statement and
  project (the writer inserts a batch with one COPY, so one row per batch). Writers never update
  a shared row, so two writers in separate transactions never wait for each other or deadlock
  on the counters. Readers sum the rows; `fold` replaces a project's rows by their sum when
  they pile up (DELETE ... RETURNING and the INSERT of the sum in one statement: rows added by
  transactions the fold does not see are not deleted, so nothing is lost or counted twice).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

TABLE = "message_counts"

# PostgreSQL: fold a project's delta rows once a read finds more than this many.
FOLD_AT = 256
# Transaction-scoped advisory lock key of the fold (one fold at a time; the others skip).
_FOLD_LOCK_KEY = 0x706F73746E756D73  # "postnums"

# Each adds to the project's row, and creates it when the UPDATE found none (inside a trigger
# changes() is the count of the trigger's own last statement): one index look-up per message.
_SQLITE_ADD = """
  UPDATE message_counts
    SET total = total + 1, unread = unread + (CASE WHEN NEW.read THEN 0 ELSE 1 END)
    WHERE project = NEW.project;
  INSERT INTO message_counts (project, total, unread)
    SELECT NEW.project, 1, CASE WHEN NEW.read THEN 0 ELSE 1 END WHERE changes() = 0;"""
_SQLITE_REMOVE = """
  UPDATE message_counts
    SET total = total - 1, unread = unread - (CASE WHEN OLD.read THEN 0 ELSE 1 END)
    WHERE project = OLD.project;"""
_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER message_counts_insert AFTER INSERT ON messages BEGIN{_SQLITE_ADD}\nEND",
    f"CREATE TRIGGER message_counts_delete AFTER DELETE ON messages BEGIN{_SQLITE_REMOVE}\nEND",
    "CREATE TRIGGER message_counts_update AFTER UPDATE OF read, project ON messages\n"
    "WHEN OLD.read IS NOT NEW.read OR OLD.project IS NOT NEW.project BEGIN"
    f"{_SQLITE_REMOVE}{_SQLITE_ADD}\nEND",
)

_PG_FUNCTIONS = (
    """CREATE FUNCTION message_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO message_counts (project, total, unread)
    SELECT project, count(*), count(*) FILTER (WHERE NOT read) FROM new_rows GROUP BY project;
  RETURN NULL;
END $$""",
    """CREATE FUNCTION message_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO message_counts (project, total, unread)
    SELECT project, -count(*), -count(*) FILTER (WHERE NOT read) FROM old_rows GROUP BY project;
  RETURN NULL;
END $$""",
    """CREATE FUNCTION message_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO message_counts (project, total, unread)
    SELECT project, sum(total), sum(unread) FROM (
      SELECT project, -1 AS total, CASE WHEN read THEN 0 ELSE -1 END AS unread FROM old_rows
      UNION ALL
      SELECT project, 1, CASE WHEN read THEN 0 ELSE 1 END FROM new_rows
    ) AS changes
    GROUP BY project
    HAVING sum(total) <> 0 OR sum(unread) <> 0;
  RETURN NULL;
END $$""",
)

_PG_TRIGGERS = (
    """CREATE TRIGGER message_counts_insert AFTER INSERT ON messages
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
EXECUTE FUNCTION message_counts_inserted()""",
    """CREATE TRIGGER message_counts_delete AFTER DELETE ON messages
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
EXECUTE FUNCTION message_counts_deleted()""",
    # Transition tables allow no column list: every UPDATE statement runs it; one that changes
    # no read flag and no project adds nothing (HAVING).
    """CREATE TRIGGER message_counts_update AFTER UPDATE ON messages
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
EXECUTE FUNCTION message_counts_updated()""",
)

# The rows stored before the triggers existed (the triggers come first: on PostgreSQL
# CREATE TRIGGER locks out writers until the migration commits, so none is missed).
_INITIAL = """INSERT INTO message_counts (project, total, unread)
SELECT project, count(*), sum(CASE WHEN read THEN 0 ELSE 1 END) FROM messages GROUP BY project"""


def create_statements(dialect: str) -> list[str]:
    """Triggers and the initial counts (the table is created by the migration)."""
    if dialect == "sqlite":
        return [*_SQLITE_TRIGGERS, _INITIAL]
    return [*_PG_FUNCTIONS, *_PG_TRIGGERS, _INITIAL]


def drop_statements(dialect: str) -> list[str]:
    names = ("message_counts_insert", "message_counts_delete", "message_counts_update")
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {n}" for n in names]
    return [f"DROP TRIGGER IF EXISTS {n} ON messages" for n in names] + [
        f"DROP FUNCTION IF EXISTS {f}()"
        for f in ("message_counts_inserted", "message_counts_deleted", "message_counts_updated")
    ]


class CountsTable:
    """Reading and folding a table of (project, total, unread) delta rows: `message_counts`
    here, `tagged_counts` (tagged_counts.py) likewise."""

    def __init__(self, table: str, fold_lock_key: int) -> None:
        self._lock_key = fold_lock_key
        self._read = text(
            "SELECT coalesce(sum(total), 0), coalesce(sum(unread), 0), count(*) "
            f"FROM {table} WHERE project = :project"
        )
        self._fold = text(
            f"""WITH gone AS (DELETE FROM {table} WHERE project = :project RETURNING total, unread)
INSERT INTO {table} (project, total, unread)
SELECT :project, coalesce(sum(total), 0), coalesce(sum(unread), 0) FROM gone"""
        )

    def read(self, conn: Connection, project: str) -> tuple[int, int, int]:
        """(total, unread, rows summed) of `project`."""
        total, unread, rows = conn.execute(self._read, {"project": project}).one()
        return int(total), int(unread), int(rows)

    def fold(self, conn: Connection, project: str) -> bool:
        """PostgreSQL: replace `project`'s rows by one row of their sums, in the caller's
        transaction; False (nothing done) when another fold holds the lock."""
        locked = conn.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": self._lock_key}
        ).scalar()
        if not locked:
            return False
        conn.execute(self._fold, {"project": project})
        return True


_COUNTS = CountsTable(TABLE, _FOLD_LOCK_KEY)
read = _COUNTS.read
fold = _COUNTS.fold


__all__ = [
    "FOLD_AT",
    "TABLE",
    "CountsTable",
    "create_statements",
    "drop_statements",
    "fold",
    "read",
]
