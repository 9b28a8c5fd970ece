"""`from:` searches on SQLite, served by the sender index of migration 0026.

`from:` keeps Mailpit's meaning, a case-insensitive substring of the lower-cased From lines
(`messages.from_text`), which no B-tree answers directly. But a project has far fewer senders
than messages, so on SQLite:

1. `distinct_senders` walks the index `ix_messages_project_from` (project, from_text,
   created_us, seq, read) from one distinct `from_text` to the next (one index step per
   sender, a recursive query) and gives up past `MAX_SENDERS` distinct values (the store then
   walks the messages as before); `driven_condition` keeps those containing the terms;
2. the query's condition then adds `from_text IN (those senders)`, which SQLite reads from the
   same index (no message row for the page's order or its counts), the term's `LIKE` staying
   the exact test, and the other terms tested per message.

The index is partial (`_PARTIAL`), so that no other query of the project uses it.

PostgreSQL has no such index: its trigram index (fulltext.py) answers `from:` already.
"""

from __future__ import annotations

from sqlalchemy import and_, false, text
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from postroom.core.search import SearchQuery
from postroom.storage.schema import messages
from postroom.storage.search_sql import query_condition

INDEX = "ix_messages_project_from"
# The index is partial on a condition every row meets (the column is NOT NULL) and that no
# other query states, so SQLite uses it only for the queries here, which state it: a plain
# index on (project, ...) was taken for other queries of the project (its counts, free text
# counts: 0.6 s -> 9 s at a million messages when the database had statistics without it).
_PARTIAL = "from_text IS NOT NULL"
# Distinct senders walked at most (about 3 µs each) before the walk is given up.
MAX_SENDERS = 10_000

_DISTINCT = text(
    """
    WITH RECURSIVE senders(sender, n) AS (
        SELECT (SELECT min(from_text) FROM messages
                WHERE project = :project AND from_text IS NOT NULL), 1
        UNION ALL
        SELECT (SELECT min(from_text) FROM messages
                WHERE project = :project AND from_text IS NOT NULL
                AND from_text > senders.sender), n + 1
        FROM senders WHERE senders.sender IS NOT NULL AND n <= :cap
    )
    SELECT sender FROM senders WHERE sender IS NOT NULL
    """
)


def create_statement() -> str:
    return (
        f"CREATE INDEX {INDEX} ON messages (project, from_text, created_us, seq, read)"
        f" WHERE {_PARTIAL}"
    )


def drop_statement() -> str:
    return f"DROP INDEX IF EXISTS {INDEX}"


def sender_terms(query: SearchQuery | None) -> list[str]:
    """The (lower-cased) texts of the query's `from:` terms that are not negated."""
    if query is None:
        return []
    return [t.text for t in query.terms if t.field == "from" and not t.negated and t.text]


def distinct_senders(conn: Connection, project: str, cap: int | None = None) -> list[str] | None:
    """The project's distinct `from_text` values; None when it has more than `cap`
    (default MAX_SENDERS)."""
    cap = MAX_SENDERS if cap is None else cap
    found = [str(s) for s in conn.execute(_DISTINCT, {"project": project, "cap": cap}).scalars()]
    return None if len(found) > cap else found


def driven_condition(
    conn: Connection,
    project: str,
    query: SearchQuery | None,
    backend: str,
    total: int,
    limit: int,
) -> ColumnElement[bool] | None:
    """The query's condition in `project` (of `total` messages) restricted to the senders its
    `from:` terms match, every term still tested per message; None when it has no such term,
    on PostgreSQL, when the project has more than MAX_SENDERS senders, and when the matching
    senders are expected to have more than `limit` messages (their share of the senders times
    `total`: reading those from the index would cost more than walking the newest messages)."""
    needles = sender_terms(query)
    if backend != "sqlite" or not needles:
        return None
    senders = distinct_senders(conn, project)
    if senders is None:
        return None
    # lower(): a superset of what the LIKE (case-insensitive for ASCII) matches; the LIKE
    # stays the exact test.
    matched = [s for s in senders if all(n in s.lower() for n in needles)]
    if len(matched) * total > limit * max(1, len(senders)):
        return None
    if not matched:
        return and_(messages.c.project == project, false())
    probe = query_condition(query, project, backend, probe=True)
    assert probe is not None
    column = messages.c.from_text
    return and_(messages.c.project == project, column.isnot(None), column.in_(matched), probe)


__all__ = [
    "INDEX",
    "MAX_SENDERS",
    "create_statement",
    "distinct_senders",
    "driven_condition",
    "drop_statement",
    "sender_terms",
]
