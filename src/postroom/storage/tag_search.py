"""Searches with a `tag:` term, read from the per-tag counters (storage/tag_counters.py).

The counters give each tag's number of messages before any message is read, which the query
planners cannot know:

* A query that is one `tag:` term has its exact counts there (`counts`): the default API
  answer and the UI's second request need not read every tagged message. So do `-tag:X`
  (the project's counts minus the tag's), `is:tagged` and `-is:tagged` (tagged_counts.py),
  and any of these with `is:read` / `is:unread`.
* A page whose query has a positive `tag:` term walks its rarest tag's messages newest
  first (`walk`, store.py `_tag_walk`), both backends: `message_tags` rows hold their
  message's order key (created_us, seq; schema.py, migration 0030), so the index
  (project, tag_lc, created_us, seq) lists them in page order, each message read by seq to
  test the other terms, stopping once the page is full. It reads no untagged message, so a
  common tag whose messages are all old answers as fast as a recent one (the walk of the
  project's messages newest first read almost every message before finding 50: 0.15-0.8 s
  on SQLite, 1.1-2.7 s on PostgreSQL at a million, 100,000 tagged among the oldest 200,000;
  bench/search_million.py `tag:archive`). A query of the tag alone reads the index only.
  The query's `before:` / `after:` terms bound the walk's range of that index (`date_range`).
  When another index may narrow the query more than a common tag does (store.py
  `_narrowable`), the walk first covers the tag's newest messages only (store.py
  TAG_WINDOW) and, if they do not hold the page, the page is answered from that index with
  the tag's messages, never by a walk of all of them (which read all 100,000 when the term
  matched none: `tag:archive subject:invoice` 0.13-0.3 s on SQLite, 2.4-2.9 s on
  PostgreSQL): SQLite walks only the tag's rows among its full-text candidates (`walk`
  `fts`, a temporary index of their seqs, or of their intersection with the tag's seqs
  when they are many: `merged`), at once when they are rare; PostgreSQL reads the messages
  of `messages.tags_lc @> ARRAY[tag]` holding the term's trigrams from the partial GIN
  index of tag_array.py.
* SQLite: a count whose query has a rare tag (at most `DRIVE_MAX` messages, the rarest of
  its positive `tag:` terms) is driven by that tag (`project_match` with `driven=True`): the
  project is tested as `+project`, which no index serves, so SQLite reads the tag's messages
  by rowid from the `seq IN (...)` set of search_sql.py (the tag index alone gives their
  seqs), instead of walking the project's messages (0.1-0.2 s at a million messages).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression

from postroom.core.search import SearchQuery
from postroom.storage import tagged_counts
from postroom.storage.codec import to_micros
from postroom.storage.fulltext import FtsFilter, sqlite_condition
from postroom.storage.schema import message_tags, messages, tag_counts
from postroom.storage.search_sql import query_condition, tag_condition

# A tag with at most this many messages drives the count on SQLite (and the page, with
# `tag_walk` off): reading and sorting 20,000 messages by rowid takes 20-60 ms at a million
# messages (bench/search_million.py).
DRIVE_MAX = 20_000

_c = messages.c
# The walked tag's rows: an alias, so that the other terms' look-ups of message_tags (the
# `-tag:` or second `tag:` of a query) are not correlated with them.
_mt = message_tags.alias("walked").c
T = TypeVar("T", bound=Any)
_t = tag_counts.c


def positive_tags(query: SearchQuery | None) -> list[str]:
    """The lower-cased tags the query's messages must have (its `tag:` terms not negated)."""
    if query is None:
        return []
    return [t.text.strip().lower() for t in query.terms if t.field == "tag" and not t.negated]


def tag_totals(conn: Connection, project: str, tag: str) -> tuple[int, int]:
    """The number of the project's messages tagged `tag` (lower-cased), and of unread ones."""
    total, unread = conn.execute(
        select(func.coalesce(func.sum(_t.total), 0), func.coalesce(func.sum(_t.unread), 0)).where(
            _t.project == project, _t.tag_lc == tag
        )
    ).one()
    return int(total), int(unread)


def counts(
    conn: Connection,
    project: str,
    query: SearchQuery | None,
    backend: str,
    project_counts: tuple[int, int],
    to_fold: set[str] | None = None,
) -> tuple[int, int] | None:
    """The exact (matched, unread) of a query the counters answer without reading a message;
    None for any other query.

    Such a query is a conjunction of at most one term on tags (`tag:X`, `-tag:X`,
    `is:tagged`, `-is:tagged`) and any `is:read` / `is:unread` terms. The tag term
    picks a set whose (total, unread) the counters hold or, negated, the project's minus
    them (a message has a tag at most once: message_tags' primary key); `project_counts` is
    the project's (total, unread) (message_counts.py) for no tag term. A read term then keeps
    the set's unread or read ones. PostgreSQL: the project is added to `to_fold` when its
    tagged_counts delta rows pile up (the caller folds them after the read)."""
    if query is None or query.empty:
        return None
    sets = [t for t in query.terms if t.field in ("tag", "is-tagged")]
    flags = [t for t in query.terms if t.field == "is-read"]
    if len(sets) + len(flags) != len(query.terms) or len(sets) > 1:
        return None
    total, unread = project_counts
    if sets:
        term = sets[0]
        if term.field == "tag":
            found = tag_totals(conn, project, term.text.strip().lower())
        else:
            tagged, tagged_unread, rows = tagged_counts.read(conn, project)
            found = (tagged, tagged_unread)
            if rows > tagged_counts.FOLD_AT and backend == "postgresql" and to_fold is not None:
                to_fold.add(project)
        if term.negated:
            found = (total - found[0], unread - found[1])
        total, unread = found
    wants_read = any(not t.negated for t in flags)  # is:read (is:unread is it negated)
    wants_unread = any(t.negated for t in flags)
    if wants_read and wants_unread:
        return 0, 0
    if wants_unread:
        return unread, unread
    if wants_read:
        return total - unread, 0
    return total, unread


def rarest(
    conn: Connection, project: str, query: SearchQuery | None, backend: str
) -> tuple[str, int] | None:
    """The query's rarest positive tag and its number of messages; None without one, and on
    PostgreSQL (its planner starts from the tag index by itself)."""
    return rarest_tag(conn, project, query) if backend == "sqlite" else None


def rarest_tag(conn: Connection, project: str, query: SearchQuery | None) -> tuple[str, int] | None:
    """The query's rarest positive tag and its number of messages (both backends); None
    without one."""
    tags = positive_tags(query)
    if not tags:
        return None
    return min(((tag, tag_totals(conn, project, tag)[0]) for tag in tags), key=lambda t: t[1])


def _without_tag(query: SearchQuery, tag: str) -> SearchQuery:
    """The query without its (first) positive term on `tag`, which the walk itself keeps."""
    terms = list(query.terms)
    for i, t in enumerate(terms):
        if t.field == "tag" and not t.negated and t.text.strip().lower() == tag:
            del terms[i]
            break
    return dataclasses.replace(query, terms=tuple(terms))


def date_range(query: SearchQuery) -> list[ColumnElement[bool]]:
    """The query's `before:` / `after:` terms (negated too) as bounds of the walked tag rows'
    created_us, which their index serves as a range: a walk then starts at the newest message
    the dates allow and stops at the oldest, instead of testing every newer or older tagged
    message (`tag:archive after:2025-01-04`, none of its 100,000 messages that recent, read
    them all: 174 ms on SQLite, 265 ms on PostgreSQL at a million). The terms stay among
    those tested per message too (search_sql.py), which gives the same answer."""
    bounds: list[ColumnElement[bool]] = []
    for t in query.terms:
        if t.field not in ("before", "after") or t.when is None:
            continue
        micros = to_micros(t.when)
        if (t.field == "before") != t.negated:  # before:, -after:
            bounds.append(_mt.created_us < micros if not t.negated else _mt.created_us <= micros)
        else:  # after:, -before:
            bounds.append(_mt.created_us > micros if not t.negated else _mt.created_us >= micros)
    return bounds


def walk_edge(
    conn: Connection, project: str, tag: str, window: int, query: SearchQuery | None = None
) -> tuple[int, int] | None:
    """The order key (created_us, seq) of the tag's `window`-th newest message (within the
    query's dates, `date_range`); None when it has fewer (read from the index alone)."""
    found = conn.execute(
        select(_mt.created_us, _mt.seq)
        .where(_mt.project == project, _mt.tag_lc == tag)
        .where(*(date_range(query) if query is not None else ()))
        .order_by(_mt.created_us.desc(), _mt.seq.desc())
        .offset(window - 1)
        .limit(1)
    ).first()
    return None if found is None else (int(found.created_us), int(found.seq))


def walk(
    query: SearchQuery,
    project: str,
    backend: str,
    tag: str,
    start: int,
    limit: int,
    edge: tuple[int, int] | None = None,
    fts: FtsFilter | None = None,
    merged: bool = False,
) -> Select[tuple[int]]:
    """The seqs of the query's page from `start`: the messages of `tag` (one of its positive
    tags) walked newest first in its (project, tag_lc, created_us, seq) index, each tested
    against the query's other terms (looked up by seq), stopping once the page is full; from
    the tag's messages no older than `edge` only, when given. The query's dates bound the
    walk in that index (`date_range`). A query of that tag alone reads the index only.

    `fts` (SQLite): only the tag rows among the full-text candidates of the query's text
    terms (fulltext.sqlite_condition: their seqs in a temporary index, probed by the walk
    before any message is read), intersected with the tag's seqs first when `merged`; the
    terms' LIKEs stay the exact test."""
    page = select(_mt.seq).where(_mt.project == project, _mt.tag_lc == tag, *date_range(query))
    if fts is not None:
        page = page.where(sqlite_condition(fts, _mt.seq, (project, tag) if merged else None))
    others = query_condition(_without_tag(query, tag), project, backend, probe=True)
    if others is not None:
        page = page.join(messages, _c.seq == _mt.seq).where(others)
    if edge is not None:
        created, seq = edge
        page = page.where(_mt.created_us >= created, or_(_mt.created_us > created, _mt.seq >= seq))
    # Not correlated with the statement that reads the page's messages (store.py).
    page = page.correlate(None)
    return page.order_by(_mt.created_us.desc(), _mt.seq.desc()).offset(start).limit(limit)


def driven_condition(
    query: SearchQuery, project: str, backend: str, tag: str
) -> ColumnElement[bool]:
    """The query's condition driven by `tag`: the set of the tag's messages (which SQLite
    reads by rowid), every term (that tag's too) tested per message."""
    probe = query_condition(query, project, backend, probe=True)
    assert probe is not None
    return and_(tag_condition(project, backend, tag), probe)


def unindexed(column: ColumnElement[T]) -> ColumnElement[T]:
    """`+column`: the same value, which SQLite serves by no index."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def project_match(project: str, driven: bool) -> ColumnElement[bool]:
    """`messages.project = project`, as `+project` (served by no index) when `driven`."""
    return (unindexed(_c.project) if driven else _c.project) == project


__all__ = [
    "DRIVE_MAX",
    "counts",
    "date_range",
    "driven_condition",
    "positive_tags",
    "project_match",
    "rarest",
    "rarest_tag",
    "tag_totals",
    "walk",
    "walk_edge",
]
