"""SQLite: each project's number of tagged messages (one tag or more) and of unread ones, kept
by triggers in the transaction that changes them (migration 0027), so that `is:tagged` and
`-is:tagged` are counted in O(1) (storage/count_algebra.py) instead of by a walk of every
message of the project (0.5-0.65 s at a million messages, bench/search_million.py).

Table `tagged_counts` holds one row per project (project, total, unread). What changes them:
a message's first tag added, its last tag removed (whatever removes it: `set_tags`, a tag's
deletion or a rename that merges, the message's deletion, whose BEFORE DELETE trigger of
tag_counters.py deletes its tags while the message and its `read` flag are still there), and
a tagged message's `read` flag changed. Messages stored without tags run no trigger of this
module on insert; a tagged one runs one look-up of its tags (the primary key's prefix) and
one UPDATE per tag.

SQLite's row triggers run right after each row changes, so "the message has exactly one tag
now" in the INSERT trigger is "this is its first tag", also inside a multi-row INSERT.

PostgreSQL has no such table: its planner answers `is:tagged` counts with a semi-join over
the tag index (see bench/search_million.py), and a counter kept by statement triggers would
need each concurrent tagger of a message to see the others' uncommitted tags.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

TABLE = "tagged_counts"

_UNREAD_OF = (
    "coalesce((SELECT CASE WHEN m.read THEN 0 ELSE 1 END FROM messages m"
    " WHERE m.id = {row}.message_id), 0)"
)
_TAGS_OF = "(SELECT count(*) FROM message_tags WHERE message_id = {row}.message_id)"


def _add(row: str, when: str = "1") -> str:
    unread = _UNREAD_OF.format(row=row)
    return f"""
  UPDATE tagged_counts SET total = total + 1, unread = unread + {unread}
    WHERE project = {row}.project AND {when};
  INSERT INTO tagged_counts (project, total, unread)
    SELECT {row}.project, 1, {unread} WHERE {when} AND NOT EXISTS
      (SELECT 1 FROM tagged_counts WHERE project = {row}.project);"""


def _remove(row: str, when: str = "1") -> str:
    unread = _UNREAD_OF.format(row=row)
    return f"""
  UPDATE tagged_counts SET total = total - 1, unread = unread - {unread}
    WHERE project = {row}.project AND {when};"""


_CREATE_TABLE = """CREATE TABLE tagged_counts (
  project VARCHAR(100) NOT NULL PRIMARY KEY,
  total BIGINT NOT NULL,
  unread BIGINT NOT NULL
)"""

_TRIGGERS = (
    # The message's first tag (the count includes the new row).
    "CREATE TRIGGER tagged_counts_insert AFTER INSERT ON message_tags\n"
    f"WHEN {_TAGS_OF.format(row='NEW')} = 1 BEGIN{_add('NEW')}\nEND",
    # Its last tag gone.
    "CREATE TRIGGER tagged_counts_delete AFTER DELETE ON message_tags\n"
    f"WHEN {_TAGS_OF.format(row='OLD')} = 0 BEGIN{_remove('OLD')}\nEND",
    # A tag moved to another message or project (nothing does today; a rename keeps both):
    # the old message untagged if that was its last tag, the new one tagged if its first.
    "CREATE TRIGGER tagged_counts_update AFTER UPDATE OF message_id, project ON message_tags\n"
    "WHEN OLD.message_id IS NOT NEW.message_id OR OLD.project IS NOT NEW.project BEGIN"
    f"{_remove('OLD', _TAGS_OF.format(row='OLD') + ' = 0')}"
    f"{_add('NEW', _TAGS_OF.format(row='NEW') + ' = 1')}\nEND",
    """CREATE TRIGGER tagged_counts_message_read AFTER UPDATE OF read ON messages
WHEN OLD.read IS NOT NEW.read
  AND EXISTS (SELECT 1 FROM message_tags WHERE message_id = NEW.id) BEGIN
  UPDATE tagged_counts SET unread = unread + (CASE WHEN NEW.read THEN -1 ELSE 1 END)
    WHERE project = NEW.project;
END""",
)

_NAMES = (
    "tagged_counts_insert",
    "tagged_counts_delete",
    "tagged_counts_update",
    "tagged_counts_message_read",
)

# The tagged messages stored before the triggers existed.
_INITIAL = """INSERT INTO tagged_counts (project, total, unread)
SELECT t.project, count(*), sum(CASE WHEN m.read THEN 0 ELSE 1 END)
FROM (SELECT DISTINCT project, message_id FROM message_tags) AS t
JOIN messages m ON m.id = t.message_id
GROUP BY t.project"""


def create_statements(dialect: str) -> list[str]:
    """The table, its triggers and the initial counts; nothing on PostgreSQL."""
    if dialect != "sqlite":
        return []
    return [_CREATE_TABLE, *_TRIGGERS, _INITIAL]


def drop_statements(dialect: str) -> list[str]:
    if dialect != "sqlite":
        return []
    return [f"DROP TRIGGER IF EXISTS {n}" for n in _NAMES] + [f"DROP TABLE IF EXISTS {TABLE}"]


_READ = text("SELECT total, unread FROM tagged_counts WHERE project = :project")


def read(conn: Connection, project: str) -> tuple[int, int]:
    """(tagged messages, unread ones) of `project` (SQLite only)."""
    found = conn.execute(_READ, {"project": project}).first()
    return (0, 0) if found is None else (int(found[0]), int(found[1]))


__all__ = ["TABLE", "create_statements", "drop_statements", "read"]
