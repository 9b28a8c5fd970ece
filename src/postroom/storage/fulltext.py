"""The full-text index of `messages` (migration 0018) and the conditions that use it.

Search keeps Mailpit's semantics: a term matches when it is a case-insensitive substring of a
field. The text columns are lower-cased at ingest (schema.py), so the exact test stays the plain
`LIKE '%term%'` of search_sql.py, which the index answers or narrows:

* SQLite: `messages_fts`, an FTS5 table over the seven text columns with the `trigram`
  tokenizer (case-sensitive: the columns are already lower-case) and `messages` as its external
  content, kept in step by triggers on insert, update and delete, inside the statement's own
  transaction. A phrase query `"term"` on a trigram table matches exactly the rows holding
  `term` as a substring, for terms of three characters or more, so it replaces the LIKE; a
  column filter (`{from_text}: "term"`) restricts it to one field. Shorter terms have no
  trigram and are answered by the scan alone, as before.
* PostgreSQL: one GIN `gin_trgm_ops` (pg_trgm) index on the concatenation of the seven text
  columns. `concat LIKE '%term%'` is answered by the index (with PostgreSQL's own recheck), and
  since a field holding the term makes the concatenation hold it, it is a sound pre-filter for
  every field; the per-field `LIKE` stays beside it, so a match straddling two columns of the
  concatenation is never a result.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import column, literal_column, select, table
from sqlalchemy.sql.elements import ColumnElement

from postroom.storage.schema import messages

# The indexed columns, in index order (the FTS5 column names are the same).
FTS_COLUMNS = (
    "subject_lc",
    "from_text",
    "to_text",
    "cc_text",
    "bcc_text",
    "message_id_lc",
    "search_text",
)

SQLITE_TABLE = "messages_fts"
PG_INDEX = "ix_messages_search_trgm"
# The expression of the PostgreSQL index; `pg_concat()` builds the same one for queries (the
# planner uses an expression index only for an identical expression).
PG_EXPRESSION = " || ".join(FTS_COLUMNS)

# Trigram indexes hold nothing for shorter terms.
MIN_TERM = 3

_fts = table(SQLITE_TABLE, column("rowid"))
_c = messages.c


def sqlite_create_statements() -> list[str]:
    """DDL of the FTS5 table and the triggers that keep it in step with `messages`."""
    cols = ", ".join(FTS_COLUMNS)
    new = ", ".join(f"new.{c}" for c in FTS_COLUMNS)
    old = ", ".join(f"old.{c}" for c in FTS_COLUMNS)
    delete_old = (
        f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}, rowid, {cols}) "
        f"VALUES ('delete', old.seq, {old});"
    )
    insert_new = f"INSERT INTO {SQLITE_TABLE}(rowid, {cols}) VALUES (new.seq, {new});"
    return [
        f"CREATE VIRTUAL TABLE {SQLITE_TABLE} USING fts5({cols}, content='messages', "
        "content_rowid='seq', tokenize='trigram case_sensitive 1')",
        f"CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN {insert_new} END",
        f"CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN {delete_old} END",
        f"CREATE TRIGGER messages_fts_update AFTER UPDATE OF {cols} ON messages "
        f"BEGIN {delete_old} {insert_new} END",
        # Index the rows already there.
        f"INSERT INTO {SQLITE_TABLE}({SQLITE_TABLE}) VALUES ('rebuild')",
    ]


def sqlite_drop_statements() -> list[str]:
    return [
        "DROP TRIGGER IF EXISTS messages_fts_update",
        "DROP TRIGGER IF EXISTS messages_fts_delete",
        "DROP TRIGGER IF EXISTS messages_fts_insert",
        f"DROP TABLE IF EXISTS {SQLITE_TABLE}",
    ]


def pg_create_statements() -> list[str]:
    return [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        f"CREATE INDEX {PG_INDEX} ON messages USING gin (({PG_EXPRESSION}) gin_trgm_ops)",
    ]


def pg_drop_statements() -> list[str]:
    return [f"DROP INDEX IF EXISTS {PG_INDEX}"]


def _fts_phrase(needle: str) -> str:
    return '"' + needle.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class IndexedCondition:
    condition: ColumnElement[bool]
    # True: the condition is the substring test itself (the caller needs no LIKE beside it).
    exact: bool


def indexed_condition(
    columns: tuple[ColumnElement[str], ...], needle: str, backend: str
) -> IndexedCondition | None:
    """A condition the index answers, true of every row where one of `columns` (indexed text
    columns) contains `needle` (lower-cased); None when the index cannot help (short term,
    other backend).

    SQLite's trigram phrase is exact: it matches where the needle's trigrams stand at
    consecutive positions of one column, that is where the column holds the needle. The
    PostgreSQL condition is on the concatenation, so only a pre-filter."""
    if len(needle) < MIN_TERM:
        return None
    if backend == "sqlite":
        names = [c.name for c in columns]
        phrase = _fts_phrase(needle)
        query = phrase if len(names) == len(FTS_COLUMNS) else "{" + " ".join(names) + "}: " + phrase
        found = select(_fts.c.rowid).where(literal_column(SQLITE_TABLE).op("MATCH")(query))
        return IndexedCondition(_c.seq.in_(found), exact=True)
    if backend == "postgresql":
        escaped = needle.replace("/", "//").replace("%", "/%").replace("_", "/_")
        return IndexedCondition(pg_concat().like(f"%{escaped}%", escape="/"), exact=False)
    return None


def pg_concat() -> ColumnElement[str]:
    expr: ColumnElement[str] = _c[FTS_COLUMNS[0]]
    for name in FTS_COLUMNS[1:]:
        expr = expr.op("||")(_c[name])
    return expr


__all__ = [
    "FTS_COLUMNS",
    "PG_EXPRESSION",
    "PG_INDEX",
    "SQLITE_TABLE",
    "IndexedCondition",
    "indexed_condition",
    "pg_create_statements",
    "pg_drop_statements",
    "sqlite_create_statements",
    "sqlite_drop_statements",
]
