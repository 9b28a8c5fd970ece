"""Each (project, tag spelling)'s number of messages and of unread ones, kept by triggers in
the transaction that changes them (migration 0024), so the inbox's tag sidebar
(`GET /api/v1/tag-counts`) reads one row per tag instead of joining every tagged message.

Table `tag_counts` holds rows (project, tag_lc, tag, total, unread) whose sums per
(project, tag_lc, tag) are the counts. What changes them, all covered by triggers:
a tag added, removed or renamed (`message_tags` INSERT/DELETE/UPDATE), a message's `read`
flag changed, and a message deleted (its tags go by the foreign key's cascade, or by the
trigger itself on SQLite). Messages stored without tags run no tag trigger on insert.

* SQLite: one row per (project, tag_lc, tag), kept by row triggers. A message's deletion
  first deletes its tags (BEFORE DELETE), while the message and its `read` flag are still
  there, so the tag triggers see them; the cascade then finds nothing.
* PostgreSQL: statement triggers with transition tables append delta rows (one per tag and
  statement), as `message_counts` does, so concurrent writers never wait on a shared row;
  `fold` replaces a project's rows by their sums. The cascade deletes tags after the message
  is gone, so an unread message's deletion removes its tags' unread first (a row trigger
  BEFORE DELETE, WHEN the message is unread: read ones run nothing); the tags' own delete
  trigger then only finds messages still present.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

TABLE = "tag_counts"

# PostgreSQL: fold a project's delta rows once a read finds more than this many.
FOLD_AT = 4096
_FOLD_LOCK_KEY = 0x706F737474616773  # "posttags"

_UNREAD_OF = (
    "coalesce((SELECT CASE WHEN m.read THEN 0 ELSE 1 END FROM messages m"
    " WHERE m.id = {row}.message_id), 0)"
)
_KEY = "project = {row}.project AND tag_lc = {row}.tag_lc AND tag = {row}.tag"


def _sqlite_add(row: str) -> str:
    unread = _UNREAD_OF.format(row=row)
    return f"""
  UPDATE tag_counts SET total = total + 1, unread = unread + {unread}
    WHERE {_KEY.format(row=row)};
  INSERT INTO tag_counts (project, tag_lc, tag, total, unread)
    SELECT {row}.project, {row}.tag_lc, {row}.tag, 1, {unread} WHERE changes() = 0;"""


def _sqlite_remove(row: str) -> str:
    unread = _UNREAD_OF.format(row=row)
    key = _KEY.format(row=row)
    return f"""
  UPDATE tag_counts SET total = total - 1, unread = unread - {unread} WHERE {key};
  DELETE FROM tag_counts WHERE {key} AND total <= 0;"""


_SQLITE_TRIGGERS = (
    f"CREATE TRIGGER tag_counts_insert AFTER INSERT ON message_tags BEGIN{_sqlite_add('NEW')}\nEND",
    f"CREATE TRIGGER tag_counts_delete AFTER DELETE ON message_tags BEGIN"
    f"{_sqlite_remove('OLD')}\nEND",
    "CREATE TRIGGER tag_counts_update AFTER UPDATE ON message_tags BEGIN"
    f"{_sqlite_remove('OLD')}{_sqlite_add('NEW')}\nEND",
    """CREATE TRIGGER tag_counts_message_read AFTER UPDATE OF read ON messages
WHEN OLD.read IS NOT NEW.read BEGIN
  UPDATE tag_counts SET unread = unread + (CASE WHEN NEW.read THEN -1 ELSE 1 END)
    WHERE (project, tag_lc, tag) IN
      (SELECT project, tag_lc, tag FROM message_tags WHERE message_id = NEW.id);
END""",
    """CREATE TRIGGER tag_counts_message_delete BEFORE DELETE ON messages BEGIN
  DELETE FROM message_tags WHERE message_id = OLD.id;
END""",
)

_PG_FUNCTIONS = (
    """CREATE FUNCTION tag_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tag_counts (project, tag_lc, tag, total, unread)
    SELECT t.project, t.tag_lc, t.tag, count(*), count(m.id) FILTER (WHERE NOT m.read)
    FROM new_rows t LEFT JOIN messages m ON m.id = t.message_id
    GROUP BY t.project, t.tag_lc, t.tag;
  RETURN NULL;
END $$""",
    """CREATE FUNCTION tag_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tag_counts (project, tag_lc, tag, total, unread)
    SELECT t.project, t.tag_lc, t.tag, -count(*), -count(m.id) FILTER (WHERE NOT m.read)
    FROM old_rows t LEFT JOIN messages m ON m.id = t.message_id
    GROUP BY t.project, t.tag_lc, t.tag;
  RETURN NULL;
END $$""",
    """CREATE FUNCTION tag_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tag_counts (project, tag_lc, tag, total, unread)
    SELECT project, tag_lc, tag, sum(total), sum(unread) FROM (
      SELECT t.project, t.tag_lc, t.tag, -1 AS total,
             CASE WHEN m.read IS NOT NULL AND NOT m.read THEN -1 ELSE 0 END AS unread
        FROM old_rows t LEFT JOIN messages m ON m.id = t.message_id
      UNION ALL
      SELECT t.project, t.tag_lc, t.tag, 1,
             CASE WHEN m.read IS NOT NULL AND NOT m.read THEN 1 ELSE 0 END
        FROM new_rows t LEFT JOIN messages m ON m.id = t.message_id
    ) AS changes
    GROUP BY project, tag_lc, tag
    HAVING sum(total) <> 0 OR sum(unread) <> 0;
  RETURN NULL;
END $$""",
    """CREATE FUNCTION tag_counts_message_read() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tag_counts (project, tag_lc, tag, total, unread)
    SELECT t.project, t.tag_lc, t.tag, 0, sum(CASE WHEN n.read THEN -1 ELSE 1 END)
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    JOIN message_tags t ON t.message_id = n.id
    WHERE o.read IS DISTINCT FROM n.read
    GROUP BY t.project, t.tag_lc, t.tag
    HAVING sum(CASE WHEN n.read THEN -1 ELSE 1 END) <> 0;
  RETURN NULL;
END $$""",
    """CREATE FUNCTION tag_counts_message_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tag_counts (project, tag_lc, tag, total, unread)
    SELECT project, tag_lc, tag, 0, -1 FROM message_tags WHERE message_id = OLD.id;
  RETURN OLD;
END $$""",
)

_PG_TRIGGERS = (
    """CREATE TRIGGER tag_counts_insert AFTER INSERT ON message_tags
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tag_counts_inserted()""",
    """CREATE TRIGGER tag_counts_delete AFTER DELETE ON message_tags
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tag_counts_deleted()""",
    """CREATE TRIGGER tag_counts_update AFTER UPDATE ON message_tags
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
EXECUTE FUNCTION tag_counts_updated()""",
    """CREATE TRIGGER tag_counts_message_read AFTER UPDATE ON messages
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
EXECUTE FUNCTION tag_counts_message_read()""",
    # Row level, but only for unread messages (the WHEN runs no function for read ones).
    """CREATE TRIGGER tag_counts_message_delete BEFORE DELETE ON messages
FOR EACH ROW WHEN (NOT OLD.read) EXECUTE FUNCTION tag_counts_message_deleted()""",
)

# The tags stored before the triggers existed (the triggers come first: on PostgreSQL
# CREATE TRIGGER locks out writers until the migration commits, so none is missed).
_INITIAL = """INSERT INTO tag_counts (project, tag_lc, tag, total, unread)
SELECT t.project, t.tag_lc, t.tag, count(*), sum(CASE WHEN m.read THEN 0 ELSE 1 END)
FROM message_tags t JOIN messages m ON m.id = t.message_id
GROUP BY t.project, t.tag_lc, t.tag"""

_NAMES = (
    ("tag_counts_insert", "message_tags"),
    ("tag_counts_delete", "message_tags"),
    ("tag_counts_update", "message_tags"),
    ("tag_counts_message_read", "messages"),
    ("tag_counts_message_delete", "messages"),
)
_PG_FUNCTION_NAMES = (
    "tag_counts_inserted",
    "tag_counts_deleted",
    "tag_counts_updated",
    "tag_counts_message_read",
    "tag_counts_message_deleted",
)


def create_statements(dialect: str) -> list[str]:
    """Triggers and the initial counts (the table is created by the migration)."""
    if dialect == "sqlite":
        return [*_SQLITE_TRIGGERS, _INITIAL]
    return [*_PG_FUNCTIONS, *_PG_TRIGGERS, _INITIAL]


def drop_statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {n}" for n, _ in _NAMES]
    return [f"DROP TRIGGER IF EXISTS {n} ON {t}" for n, t in _NAMES] + [
        f"DROP FUNCTION IF EXISTS {f}()" for f in _PG_FUNCTION_NAMES
    ]


# Sums per spelling first (a spelling whose messages are all gone is not shown, as the join
# over message_tags never showed it), then per lower-cased tag with the least spelling.
_READ = text(
    """SELECT min(tag), sum(total), sum(unread), sum(rows) FROM (
  SELECT tag_lc, tag, sum(total) AS total, sum(unread) AS unread, count(*) AS rows
  FROM tag_counts WHERE project = :project GROUP BY tag_lc, tag HAVING sum(total) > 0
) AS spelled
GROUP BY tag_lc ORDER BY tag_lc"""
)
_FOLD = text(
    """WITH gone AS (DELETE FROM tag_counts WHERE project = :project
  RETURNING tag_lc, tag, total, unread)
INSERT INTO tag_counts (project, tag_lc, tag, total, unread)
SELECT :project, tag_lc, tag, sum(total), sum(unread) FROM gone
GROUP BY tag_lc, tag HAVING sum(total) <> 0 OR sum(unread) <> 0"""
)


def read(conn: Connection, project: str) -> tuple[list[tuple[str, int, int]], int]:
    """Every tag of `project` by lower-cased name, (spelling, total, unread), and the number
    of rows summed (PostgreSQL folds them when they pile up)."""
    found = conn.execute(_READ, {"project": project}).all()
    summed = sum(int(r) for *_, r in found)
    return [(str(n), int(t), int(u or 0)) for n, t, u, _ in found], summed


def fold(conn: Connection, project: str) -> bool:
    """PostgreSQL: replace `project`'s rows by one row per spelling with their sums, in the
    caller's transaction; False (nothing done) when another fold holds the lock."""
    locked = conn.execute(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _FOLD_LOCK_KEY}
    ).scalar()
    if not locked:
        return False
    conn.execute(_FOLD, {"project": project})
    return True


__all__ = ["FOLD_AT", "TABLE", "create_statements", "drop_statements", "fold", "read"]
