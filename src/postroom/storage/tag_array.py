"""PostgreSQL: each message's lower-cased tags kept on its row too (`messages.tags_lc`, a
sorted `text[]`, NULL for none; migration 0031), so a search that combines a `tag:` term with
a text term is answered by one index scan instead of a walk of the tag's messages.

`message_tags` stays the tags' table (spellings, counts, the tag walk of tag_search.py). The
array exists for INDEX, a partial GIN index on (tags_lc, the full-text concatenation of
fulltext.py with `gin_trgm_ops`) over the tagged messages only: `tags_lc @> ARRAY[tag]` and
`concat LIKE '%term%'` are answered together inside it, GIN intersecting the tag's entry with
the term's trigrams among tagged messages alone. A walk of the tag's messages newest first
tests each one's text and reads all of them when the term matches none: `tag:archive
subject:invoice` (100,000 tagged messages among the oldest 200,000 of a million, none with
that subject) took 2.4-2.9 s (bench/search_million.py). A BitmapAnd of a GIN index on the
array alone with the trigram index of all messages read the term's 250,000 candidates from the
latter (~100 ms); the partial index holds the trigrams of tagged messages only, so its scan
found none at once (0.5 ms). Untagged messages (tags_lc NULL) are not in it: they cost the
writer nothing more, and a query of the index must imply `tags_lc IS NOT NULL`, which the
strict `@>` does.

Kept in the transaction of every change of a message's tags:

* the writers of new messages (storage/batch.py, notice_writer.py) give the array with the row
  (`value`), so a tagged message is written once, not updated after its tags;
* statement triggers with transition tables on `message_tags` (INSERT, DELETE, UPDATE: set_tags,
  rename_tag, delete_tag, a message's deletion by the cascade) compute the array again from
  `message_tags` for the messages whose tags changed (`_SYNC`), after locking their rows in id
  order (`FOR NO KEY UPDATE`, as tagged_counts.py does), so that of two transactions changing
  one message's tags the second recomputes after the first commits (READ COMMITTED: each
  statement of the function takes a new snapshot). An INSERT whose tags the row already holds
  (a new message's, given by its writer) locks and updates nothing.

What it costs: an untagged message nothing measurable (bench/smtp_acceptance.py --only
postroom --messages 10000 on PostgreSQL, 3 rounds interleaved with the code before, load
3.7-4: 985, 1,069, 1,118 msg/s before, 1,346, 1,564, 386 after (a load spike in the last);
PostgreSQL CPU 0.20-0.22 -> 0.18-0.27 ms a message). A
tagged one is indexed a second time, by INDEX, and runs the INSERT trigger's look-up: the
store's writer, batches of 6 messages with two tags and 2 KB of text each, 3,000 messages
analyzed after the first 200, 3 rounds interleaved (load 3.2-3.5): PostgreSQL CPU 0.64-0.89
-> 0.87-0.98 ms a message (median +0.31), 1.7 -> 2.0 ms a message of wall time (median).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Text, and_, bindparam, literal_column
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from postroom.storage import fulltext
from postroom.storage.schema import messages

COLUMN = "tags_lc"
INDEX = "ix_messages_tagged_search"

_c = messages.c
_TEXT_ARRAY = ARRAY(Text)
_tags_lc: ColumnElement[Any] = literal_column(f"messages.{COLUMN}", _TEXT_ARRAY)


def value(tags: Iterable[str]) -> list[str] | None:
    """The array of a message whose tags are `tags` (any spelling): lower-cased, distinct, in
    code point order (the triggers' `COLLATE "C"` order of UTF-8 text); None for no tag."""
    lowered = sorted({t.lower() for t in tags})
    return lowered or None


def has_tag(project: str, tag: str) -> ColumnElement[bool]:
    """The message is in `project` and has the tag `tag` (lower-cased), as INDEX serves."""
    return and_(_c.project == project, _tags_lc.contains(bindparam(None, [tag], type_=_TEXT_ARRAY)))


# The array of each message of `ids` computed again from message_tags, after locking the
# messages in id order; only rows whose array changes are updated.
_SYNC = """CREATE FUNCTION messages_tags_lc_sync(ids text[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF cardinality(ids) = 0 THEN
    RETURN;
  END IF;
  PERFORM 1 FROM messages WHERE id = ANY(ids) ORDER BY id FOR NO KEY UPDATE;
  UPDATE messages m SET tags_lc = t.tags
  FROM (SELECT i.id, (SELECT array_agg(x.tag_lc ORDER BY x.tag_lc COLLATE "C")
                      FROM message_tags x WHERE x.message_id = i.id) AS tags
        FROM unnest(ids) AS i(id)) AS t
  WHERE m.id = t.id AND m.tags_lc IS DISTINCT FROM t.tags;
END $$"""

_FUNCTIONS = (
    _SYNC,
    # Only messages whose array lacks one of the rows' tags (not a new message's), and no
    # call at all when there is none (the writer's every batch of tagged messages). Each
    # message's array is looked up by id in a subquery: a join, planned while the table was
    # small, kept a sequential scan of `messages` for the connection's life.
    """CREATE FUNCTION messages_tags_lc_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ids text[];
BEGIN
  SELECT array_agg(n.message_id) INTO ids
  FROM (SELECT message_id, array_agg(tag_lc) AS added FROM new_rows GROUP BY message_id) AS n
  WHERE NOT coalesce(
    (SELECT m.tags_lc FROM messages m WHERE m.id = n.message_id) @> n.added, false);
  IF ids IS NOT NULL THEN
    PERFORM messages_tags_lc_sync(ids);
  END IF;
  RETURN NULL;
END $$""",
    """CREATE FUNCTION messages_tags_lc_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM messages_tags_lc_sync(ARRAY(SELECT DISTINCT message_id FROM old_rows));
  RETURN NULL;
END $$""",
    """CREATE FUNCTION messages_tags_lc_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM messages_tags_lc_sync(ARRAY(
    SELECT message_id FROM old_rows UNION SELECT message_id FROM new_rows));
  RETURN NULL;
END $$""",
)

_TRIGGERS = (
    """CREATE TRIGGER messages_tags_lc_insert AFTER INSERT ON message_tags
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
EXECUTE FUNCTION messages_tags_lc_inserted()""",
    """CREATE TRIGGER messages_tags_lc_delete AFTER DELETE ON message_tags
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
EXECUTE FUNCTION messages_tags_lc_deleted()""",
    """CREATE TRIGGER messages_tags_lc_update AFTER UPDATE ON message_tags
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
EXECUTE FUNCTION messages_tags_lc_updated()""",
)

# The tags stored before (the triggers come first: CREATE TRIGGER keeps writers of
# message_tags out until the migration commits).
_FILL = """UPDATE messages m SET tags_lc = t.tags
FROM (SELECT message_id, array_agg(tag_lc ORDER BY tag_lc COLLATE "C") AS tags
      FROM message_tags GROUP BY message_id) AS t
WHERE m.id = t.message_id"""

_TRIGGER_NAMES = ("messages_tags_lc_insert", "messages_tags_lc_delete", "messages_tags_lc_update")
_FUNCTION_NAMES = (
    "messages_tags_lc_inserted()",
    "messages_tags_lc_deleted()",
    "messages_tags_lc_updated()",
    "messages_tags_lc_sync(text[])",
)


def create_statements() -> list[str]:
    """The column, its triggers, the arrays of the tags already stored and the index
    (PostgreSQL; migration 0031, which analyzes a table that holds messages)."""
    return [
        f"ALTER TABLE messages ADD COLUMN {COLUMN} text[]",
        *_FUNCTIONS,
        *_TRIGGERS,
        _FILL,
        f"CREATE INDEX {INDEX} ON messages USING gin "
        f"({COLUMN}, ({fulltext.PG_EXPRESSION}) gin_trgm_ops) WHERE {COLUMN} IS NOT NULL",
    ]


def drop_statements() -> list[str]:
    return [
        *(f"DROP TRIGGER IF EXISTS {n} ON message_tags" for n in _TRIGGER_NAMES),
        *(f"DROP FUNCTION IF EXISTS {f}" for f in _FUNCTION_NAMES),
        f"DROP INDEX IF EXISTS {INDEX}",
        f"ALTER TABLE messages DROP COLUMN IF EXISTS {COLUMN}",
    ]


__all__ = ["COLUMN", "INDEX", "create_statements", "drop_statements", "has_tag", "value"]
