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
* SQLite: a choice per database, off by default (`postroom fulltext on|off`, engine.py
  `set_sqlite_fulltext`): a contentless FTS5 table `messages_fts` of one column (the seven fields
  joined by newlines; `detail=none`, `columnsize=0`, trigram tokens, `case_sensitive 1` since the
  text is lower-cased already), kept by triggers in the transaction of each insert, delete
  (FTS5's 'delete' with the row's text rebuilt) and text update of a message; `on` indexes the
  stored messages (bench/search_million.py's million: 30 s of CPU, 886 MB -> 1.2 GB), `off` drops
  it. A search (store.py) uses it when it is there: `sqlite_match` counts each trigram of the
  required text terms by reading at most RARE rowids of its doclist (then MANY) and ANDs the PICK
  rarest, since ANDing every trigram reads the whole doclists of the common ones (`ref` is in
  every message of bench/search_million.py: ~40 ms to read at 1M; an fts5vocab 'row' table gives
  the same counts by reading the same doclists whole, so capped counts are cheaper); with fewer
  than FEW candidates the page's statement reads them and sorts them, the unary `+` keeping
  SQLite from walking the (project, created) index newest first and probing the candidates, which
  reads all its million entries when the term is rare or absent (140-260 ms). The per-field
  `LIKE` stays the exact test; terms under three characters scan.

  Why off by default: the index costs the writer's transaction about 0.1 ms of CPU per message
  even for the 2 KB of `X` lines that bench/smtp_acceptance.py sends. Measured with the store's
  BatchWriter (batches of 20, 20,000 messages on 20,000 stored, those lines and
  bench/search_million.py's headers): no index 0.075 ms per message; an FTS row of empty text
  +0.013; the header fields alone +0.06; all seven fields +0.09. So the body's ~2,200 tokens (4
  distinct trigrams) cost ~0.03 and the rest is per distinct trigram of a message (the
  Message-ID's and addresses' ~60-70, each a new entry in FTS5's pending hash and a posting
  flushed to a segment, 0.5-1 µs), plus a flush per transaction (~0.4 ms: at batches of 5 the
  cost per message doubles, at 100 it is 0.065). English bodies have ~1,000 distinct trigrams per
  2 KB: 0.45 ms (0.85 for random words). Not the cause: automerge 0, usermerge 16 or crisismerge
  100 (within noise), WAL growth (0.6 -> 0.7 KiB per message), the trigger (the empty row's
  +0.013 bounds what inserting the rows from the writer could save). Pre-computing each message's
  distinct trigrams outside the writer keeps the postings (the cost) and adds ~0.1 ms of Python
  per message elsewhere on the same two cores. In the capture door (bench/smtp_acceptance.py
  --only postroom --messages 20000, with and without --sqlite-fulltext, interleaved, 2026-12-04,
  load average 5-10 from other builds) the CPU per message rose by ~0.1 ms (medians of 8 rounds
  1.02 -> 1.12 ms, smtp-source's included, the `fulltext on` run taken out) and the rate fell by
  more, since the serial writer's longer transactions make the 20 sessions wait: medians 448 ->
  390 msg/s (-13%; median of the paired rounds' ratios -16%); in a quieter hour 1,456 -> 1,216
  and 1,418 -> 1,246 (-16%, -12%). The issue's bar is -10%, hence the choice. The search side at
  1M (bench/search_million.py --no-seed --no-count, warm medians, load 2-10): a rare term 34-120
  ms instead of 1.3-5.5 s, an absent one 15-27 ms instead of 1-5 s, a rare `subject:` 44-93 ms
  instead of 1.2-3 s, `from:sender42@` 90-105 ms instead of 87-410 ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Integer, column, text
from sqlalchemy.engine import Connection

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

SQLITE_TABLE = "messages_fts"  # dropped by migration 0020; `postroom fulltext on` makes it
PG_INDEX = "ix_messages_search_trgm"
# The expression of the PostgreSQL index; `pg_concat()` builds the same one for queries (the
# planner uses an expression index only for an identical expression).
PG_EXPRESSION = " || ".join(FTS_COLUMNS)

# Trigram indexes hold nothing for shorter terms.
MIN_TERM = 3

_c = messages.c


# Trigram counts are read from the doclists, at most RARE rowids each, then MANY for the ones
# at RARE when fewer than PICK are under it; the MATCH ANDs the PICK rarest trigrams.
RARE = 2_000
MANY = 50_000
PICK = 3
# A MATCH with fewer candidates than FEW drives the page: its rows are read and sorted,
# rather than the (project, created) index walked newest first probing the candidates.
FEW = 10_000


@dataclass(frozen=True)
class FtsFilter:
    """An FTS5 MATCH expression and whether it has fewer than FEW candidate messages."""

    match: str
    few: bool


def _sqlite_text(row: str) -> str:
    """The indexed text of a `messages` row (`new`, `old` or the table): the fields joined by
    newlines, as in the PostgreSQL expression (a term straddling two of them is a false
    candidate that the per-field LIKE drops)."""
    return " || char(10) || ".join(f"{row}.{name}" for name in FTS_COLUMNS)


def sqlite_present(conn: Connection) -> bool:
    """Whether the SQLite database has the FTS5 table (`postroom fulltext on` made it)."""
    found = conn.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n"),
        {"n": SQLITE_TABLE},
    ).first()
    return found is not None


def sqlite_create_statements() -> list[str]:
    """The contentless FTS5 trigram table, the triggers that keep it in the transaction of
    each insert, delete and text update of `messages`, and the statement indexing the rows
    already stored. Contentless: a 'delete' gives the text indexed, which the triggers rebuild
    from the row; `detail=none`: no positions (only which messages hold a trigram);
    `case_sensitive 1`: the text and the terms are lower-cased in Python already."""
    table = SQLITE_TABLE
    new, old = _sqlite_text("new"), _sqlite_text("old")
    insert = f"INSERT INTO {table}(rowid, body) VALUES (new.seq, {new});"
    delete = f"INSERT INTO {table}({table}, rowid, body) VALUES ('delete', old.seq, {old});"
    return [
        f"CREATE VIRTUAL TABLE {table} USING fts5(body, content='', detail=none, "
        "columnsize=0, tokenize='trigram case_sensitive 1')",
        f"CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN {insert} END",
        f"CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN {delete} END",
        f"CREATE TRIGGER messages_fts_update AFTER UPDATE OF {', '.join(FTS_COLUMNS)} "
        f"ON messages BEGIN {delete} {insert} END",
        f"INSERT INTO {table}(rowid, body) SELECT seq, {_sqlite_text('messages')} FROM messages",
    ]


def trigrams(needle: str) -> list[str]:
    """The distinct trigrams of `needle`, in order (none under MIN_TERM characters)."""
    return list(dict.fromkeys(needle[i : i + 3] for i in range(len(needle) - 2)))


def _quoted(trigram: str) -> str:
    return '"' + trigram.replace('"', '""') + '"'


_COUNT = text(
    f"SELECT count(*) FROM (SELECT 1 FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH :m LIMIT :n)"
)


def _count(conn: Connection, match: str, cap: int) -> int:
    """The messages `match` finds, counted up to `cap` (reads at most `cap` rowids)."""
    return int(conn.execute(_COUNT, {"m": match, "n": cap}).scalar_one())


def sqlite_match(conn: Connection, needles: Sequence[str]) -> FtsFilter | None:
    """An FTS5 filter true of every message holding all `needles` (lower-cased terms, each
    contained in some indexed field); None when none has a trigram.

    A message holding a term holds each of its trigrams, so any of them is a sound filter;
    ANDing all of them reads the whole doclists of the common ones (a trigram like "ord" is
    in a quarter of the messages, and each one costs ~40 ms at a million). So each trigram is
    counted first, reading at most RARE rowids of its doclist: the MATCH ANDs the PICK
    rarest of those under RARE; when none is, they are counted up to MANY, and the MATCH ANDs
    the PICK rarest under MANY (or PICK of them all). The exact LIKE decides."""
    grams = list(dict.fromkeys(g for n in needles for g in trigrams(n)))
    if not grams:
        return None
    counts = {g: _count(conn, _quoted(g), RARE) for g in grams}
    chosen = sorted((g for g in grams if counts[g] < RARE), key=counts.__getitem__)[:PICK]
    if chosen:  # fewer than RARE candidates: the common trigrams would only add reading
        if counts[chosen[0]] == 0:
            chosen = chosen[:1]
        return FtsFilter(" ".join(_quoted(g) for g in chosen), True)
    counts = {g: _count(conn, _quoted(g), MANY) for g in grams}
    chosen = sorted((g for g in grams if counts[g] < MANY), key=counts.__getitem__)[:PICK]
    match = " ".join(_quoted(g) for g in chosen or grams[:PICK])
    return FtsFilter(match, _count(conn, match, FEW) < FEW)


def sqlite_condition(match: str) -> ColumnElement[bool]:
    """`messages.seq` is among the FTS5 table's rows matching `match`."""
    found = (
        text(f"SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH :fts_match")
        .bindparams(fts_match=match)
        .columns(column("rowid", Integer))
    )
    return _c.seq.in_(found)


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
    "FtsFilter",
    "indexed_condition",
    "pg_create_statements",
    "pg_drop_statements",
    "sqlite_condition",
    "sqlite_create_statements",
    "sqlite_drop_statements",
    "sqlite_match",
    "sqlite_present",
    "trigrams",
]
