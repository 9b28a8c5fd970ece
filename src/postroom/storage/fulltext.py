"""The full-text index of `messages` (migration 0018) and the conditions that use it.

Search keeps Mailpit's semantics: a term matches when it is a case-insensitive substring of a
field. The text columns are lower-cased at ingest (schema.py), so the exact test stays the plain
`LIKE '%term%'` of search_sql.py, which the index narrows:

* PostgreSQL: one GIN `gin_trgm_ops` (pg_trgm) index on the concatenation of the seven text
  columns. `concat LIKE '%term%'` is answered by the index (with PostgreSQL's own recheck), and
  since a field holding the term makes the concatenation hold it, it is a sound pre-filter for
  every field; the per-field `LIKE` stays beside it, so a match straddling two columns of the
  concatenation is never a result. Terms shorter than three characters have no trigram and
  are answered by the scan.
* SQLite: no index. An FTS5 trigram table kept by triggers (the first form of migration 0018)
  cost about 2 ms of CPU per message of 2 KB in the writer's transaction, a quarter of the
  capture door's durable acceptance rate (bench/smtp_acceptance.py, A/B in CHANGELOG.md), and
  answered common terms more slowly than the scan because the exact counts read every match;
  migration 0020 drops it where it was created.

  Cheaper FTS5 forms measured since (issue 12; 1M rows of bench/search_million.py):
  a contentless table of one column (the seven fields joined by newlines), `detail=none`,
  `columnsize=0`, trigram tokens, kept by triggers, the `LIKE` beside it as the exact test
  (`seq IN (SELECT rowid ... MATCH '"abc" "bcd" ...')`), answers rare free text in ~50 ms
  instead of 1.2-2.9 s, but indexing costs CPU per character of body: about 0.45 ms per 2 KB of
  English text and 0.85 ms per 2 KB of random words, in the writer's transaction (automerge 0
  or 2 or 16, crisismerge 64 and batches of 64 moved it by less than 20%), and still 0.07 ms for
  the 2 KB of `X` lines bench/smtp_acceptance.py sends, where the interleaved A/B gave a
  median 1,058 -> 767 msg/s (-27%). Indexing the header fields only (subject, From, To, Cc,
  Bcc, Message-ID: 0.04-0.07 ms per message) answers a rare `subject:` in ~50 ms instead of
  1.5 s, but not free text, and ANDing every trigram of a term reads the whole doclists of the
  common ones (`from:sender42@`: 80 ms in FTS5 for all seven trigrams, 0.7 ms for the two
  rare ones): choosing a term's rare trigrams needs per-trigram counts first.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement

from postroom.storage.schema import messages

# The indexed columns, in the order of the index expression.
FTS_COLUMNS = (
    "subject_lc",
    "from_text",
    "to_text",
    "cc_text",
    "bcc_text",
    "message_id_lc",
    "search_text",
)

SQLITE_TABLE = "messages_fts"  # dropped by migration 0020
PG_INDEX = "ix_messages_search_trgm"
# The expression of the PostgreSQL index; `pg_concat()` builds the same one for queries (the
# planner uses an expression index only for an identical expression).
PG_EXPRESSION = " || ".join(FTS_COLUMNS)

# Trigram indexes hold nothing for shorter terms.
MIN_TERM = 3

_c = messages.c


def sqlite_drop_statements() -> list[str]:
    """What removes the FTS5 table and triggers of the first form of migration 0018."""
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


def indexed_condition(
    columns: tuple[ColumnElement[str], ...], needle: str, backend: str
) -> ColumnElement[bool] | None:
    """A condition the index answers, true of every row where one of `columns` (indexed text
    columns) contains `needle` (lower-cased); None when the index cannot help (short term,
    SQLite). The PostgreSQL condition is on the concatenation, so only a pre-filter."""
    if len(needle) < MIN_TERM or backend != "postgresql":
        return None
    escaped = needle.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return pg_concat().like(f"%{escaped}%", escape="/")


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
    "indexed_condition",
    "pg_create_statements",
    "pg_drop_statements",
    "sqlite_drop_statements",
]
