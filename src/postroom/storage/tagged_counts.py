"""SQLite: each project's number of tagged messages (one tag or more) and of unread ones, kept
by triggers in the transaction that changes them (migration 0028), so that `is:tagged` and
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

PostgreSQL: table `tagged_counts` holds delta rows (seq, project, total, unread) appended by
statement triggers with transition tables, summed by readers and folded when they pile up, as
message_counts.py does. Whether a tag is its message's first (or a deletion its last) depends on
tags other transactions may be adding: each trigger first locks the messages it looks at
(`FOR NO KEY UPDATE`, in id order), so of two transactions tagging one message the second waits
for the first to commit and then sees its tag (READ COMMITTED: each statement of the function
takes a new snapshot). A message's deletion removes its tags after the message is gone (the
foreign key's cascade), so an unread tagged message's unread is removed first by a row trigger
BEFORE DELETE (WHEN the message is unread). Nothing moves a tag to another message or project
(a rename changes its spelling only), so PostgreSQL has no UPDATE trigger on `message_tags`.
"""

from __future__ import annotations

from postroom.storage.message_counts import CountsTable

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


_PG_TABLE = (
    """CREATE TABLE tagged_counts (
  seq BIGSERIAL PRIMARY KEY,
  project VARCHAR(100) NOT NULL,
  total BIGINT NOT NULL,
  unread BIGINT NOT NULL
)""",
    "CREATE INDEX ix_tagged_counts_project ON tagged_counts (project)",
)

_PG_LOCK = """  PERFORM 1 FROM messages WHERE id IN (SELECT message_id FROM {rows})
    ORDER BY id FOR NO KEY UPDATE;"""

_PG_FUNCTIONS = (
    f"""CREATE FUNCTION tagged_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{_PG_LOCK.format(rows="new_rows")}
  INSERT INTO tagged_counts (project, total, unread)
    SELECT n.project, count(*), count(*) FILTER (WHERE m.read IS FALSE)
    FROM (SELECT project, message_id, count(*) AS added FROM new_rows
          GROUP BY project, message_id) AS n
    LEFT JOIN messages m ON m.id = n.message_id
    WHERE (SELECT count(*) FROM message_tags t WHERE t.message_id = n.message_id) = n.added
    GROUP BY n.project;
  RETURN NULL;
END $$""",
    f"""CREATE FUNCTION tagged_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{_PG_LOCK.format(rows="old_rows")}
  INSERT INTO tagged_counts (project, total, unread)
    SELECT o.project, -count(*), -count(*) FILTER (WHERE m.read IS FALSE)
    FROM (SELECT DISTINCT project, message_id FROM old_rows) AS o
    LEFT JOIN messages m ON m.id = o.message_id
    WHERE NOT EXISTS (SELECT 1 FROM message_tags t WHERE t.message_id = o.message_id)
    GROUP BY o.project;
  RETURN NULL;
END $$""",
    """CREATE FUNCTION tagged_counts_message_read() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tagged_counts (project, total, unread)
    SELECT n.project, 0, sum(CASE WHEN n.read THEN -1 ELSE 1 END)
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE o.read IS DISTINCT FROM n.read
      AND EXISTS (SELECT 1 FROM message_tags t WHERE t.message_id = n.id)
    GROUP BY n.project
    HAVING sum(CASE WHEN n.read THEN -1 ELSE 1 END) <> 0;
  RETURN NULL;
END $$""",
    """CREATE FUNCTION tagged_counts_message_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tagged_counts (project, total, unread)
    SELECT OLD.project, 0, -1
    WHERE EXISTS (SELECT 1 FROM message_tags t WHERE t.message_id = OLD.id);
  RETURN OLD;
END $$""",
)

_PG_TRIGGERS = (
    """CREATE TRIGGER tagged_counts_insert AFTER INSERT ON message_tags
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tagged_counts_inserted()""",
    """CREATE TRIGGER tagged_counts_delete AFTER DELETE ON message_tags
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tagged_counts_deleted()""",
    """CREATE TRIGGER tagged_counts_message_read AFTER UPDATE ON messages
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
EXECUTE FUNCTION tagged_counts_message_read()""",
    """CREATE TRIGGER tagged_counts_message_delete BEFORE DELETE ON messages
FOR EACH ROW WHEN (NOT OLD.read) EXECUTE FUNCTION tagged_counts_message_deleted()""",
)
_PG_NAMES = (
    ("tagged_counts_insert", "message_tags"),
    ("tagged_counts_delete", "message_tags"),
    ("tagged_counts_message_read", "messages"),
    ("tagged_counts_message_delete", "messages"),
)
_PG_FUNCTION_NAMES = (
    "tagged_counts_inserted",
    "tagged_counts_deleted",
    "tagged_counts_message_read",
    "tagged_counts_message_deleted",
)

# PostgreSQL: fold a project's delta rows once a read finds more than this many.
FOLD_AT = 256
_FOLD_LOCK_KEY = 0x706F73747467646E  # "postttgdn"


def create_statements(dialect: str) -> list[str]:
    """The table, its triggers and the initial counts (the triggers first: on PostgreSQL
    CREATE TRIGGER locks out writers until the migration commits, so none is missed)."""
    if dialect == "sqlite":
        return [_CREATE_TABLE, *_TRIGGERS, _INITIAL]
    return [*_PG_TABLE, *_PG_FUNCTIONS, *_PG_TRIGGERS, _INITIAL]


def drop_statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        triggers = [f"DROP TRIGGER IF EXISTS {n}" for n in _NAMES]
        return [*triggers, f"DROP TABLE IF EXISTS {TABLE}"]
    return [
        *(f"DROP TRIGGER IF EXISTS {n} ON {t}" for n, t in _PG_NAMES),
        *(f"DROP FUNCTION IF EXISTS {f}()" for f in _PG_FUNCTION_NAMES),
        f"DROP TABLE IF EXISTS {TABLE}",
    ]


# (tagged messages, unread ones, rows summed) of a project; folding as message_counts does.
_COUNTS = CountsTable(TABLE, _FOLD_LOCK_KEY)
read = _COUNTS.read
fold = _COUNTS.fold


__all__ = ["FOLD_AT", "TABLE", "create_statements", "drop_statements", "fold", "read"]
