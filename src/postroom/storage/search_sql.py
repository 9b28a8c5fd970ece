"""Translate a `SearchQuery` (core/search.py) into a SQL condition on `messages`.

Text fields are stored lower-cased (see schema.py), so a case-insensitive substring test is a
plain `LIKE '%term%'` on both backends, with `%`, `_` and the escape character itself escaped.
Terms on the indexed text fields also get the full-text index's pre-filter (fulltext.py).
"""

from __future__ import annotations

from sqlalchemy import and_, exists, func, literal_column, not_, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from postroom.core.search import SearchQuery, Term
from postroom.storage import tag_array
from postroom.storage.codec import to_micros
from postroom.storage.fulltext import (
    MIN_TERM,
    FtsFilter,
    indexed_condition,
    short_pattern,
    sqlite_condition,
)
from postroom.storage.schema import message_tags, messages

_c = messages.c

_FIELD_COLUMNS = {
    "from": (_c.from_text,),
    "to": (_c.to_text,),
    "cc": (_c.cc_text,),
    "subject": (_c.subject_lc,),
    "message-id": (_c.message_id_lc,),
    "text": (
        _c.subject_lc,
        _c.from_text,
        _c.to_text,
        _c.cc_text,
        _c.bcc_text,
        _c.message_id_lc,
        _c.search_text,
    ),
}


def _contains(column: ColumnElement[str], needle: str) -> ColumnElement[bool]:
    return column.contains(needle.lower(), autoescape=True)


def _bcc(needle: str) -> ColumnElement[bool]:
    """bcc: as the API reports Bcc (serialize.envelope_bcc): the Bcc header, or an envelope
    recipient that To and Cc do not name (JSON of addresses as given: compared lower-cased)."""
    return or_(
        _contains(_c.bcc_text, needle),
        and_(
            _contains(func.lower(_c.recipients), needle),
            not_(_contains(_c.to_text, needle)),
            not_(_contains(_c.cc_text, needle)),
        ),
    )


def _reply_to(needle: str) -> ColumnElement[bool]:
    return _contains(func.lower(_c.reply_to_json), needle)


def tag_condition(
    project: str, backend: str, tag: str | None, probe: bool = False
) -> ColumnElement[bool]:
    """The message has the tag `tag` (lower-cased), or any tag when `tag` is None. `probe`:
    phrased as a look-up per message (for a scan of a bounded window of messages)."""
    if backend == "sqlite" and not probe:
        # seq IN (...): the outer scan probes the set with the rowid that every index
        # entry carries, so it reads no message rows; SQLite plans a correlated EXISTS
        # as a scan of the whole table. The tag rows hold their message's seq (schema.py):
        # the set is read from the (project, tag_lc, created_us, seq) index alone.
        inner = select(message_tags.c.seq).where(message_tags.c.project == project)
        if tag is not None:
            inner = inner.where(message_tags.c.tag_lc == tag)
        return _c.seq.in_(inner)
    # PostgreSQL turns EXISTS into a semi-join driven by the tag index.
    found = select(message_tags.c.message_id).where(
        message_tags.c.message_id == _c.id, message_tags.c.project == project
    )
    if tag is not None:
        found = found.where(message_tags.c.tag_lc == tag)
    return exists(found)


def term_condition(
    term: Term, project: str, backend: str, probe: bool = False, short: bool = False
) -> ColumnElement[bool]:
    """The condition for one term of a search in `project`, negation applied.

    `backend` is the dialect name ("sqlite" or "postgresql"): a few terms are phrased the way
    each planner serves best. `probe`: the condition filters a bounded window of messages
    walked newest first (store.py), so tags are looked up per message rather than collected
    first (SQLite would collect every message of a common tag), and the full-text index is
    left out (PostgreSQL would read every match of a common term from it). `short`: terms of
    1-2 characters get PostgreSQL's index of short terms too (fulltext.short_pattern; the
    caller expects few matches: store.py)."""
    cond: ColumnElement[bool]
    field = term.field
    columns = _FIELD_COLUMNS.get(field)
    if columns is not None:
        if not term.text:
            cond = true()
        else:
            exact = (
                _contains(columns[0], term.text)
                if len(columns) == 1
                else or_(*(_contains(col, term.text) for col in columns))
            )
            # The full-text index (PostgreSQL) narrows the rows; the LIKE stays the exact test.
            # Not in a window: the planner would read every match of a common term from the
            # index rather than test the few thousand rows of the window.
            narrow = (
                None
                if probe
                else indexed_condition(
                    columns, term.text.lower(), backend, short and not term.negated
                )
            )
            cond = exact if narrow is None else and_(narrow, exact)
    elif field == "bcc":
        cond = _bcc(term.text) if term.text else true()
    elif field == "reply-to":
        cond = _reply_to(term.text) if term.text else true()
    elif field == "addressed":
        cond = (
            or_(
                _contains(_c.from_text, term.text),
                _contains(_c.to_text, term.text),
                _contains(_c.cc_text, term.text),
                _bcc(term.text),
                _reply_to(term.text),
            )
            if term.text
            else true()
        )
    elif field == "tag" and backend == "postgresql" and not probe and not term.negated:
        # The message's array of tags, which the partial GIN index of tag_array.py answers
        # together with the text terms' trigrams (negated, NULL for an untagged message
        # would not be true: the EXISTS below stays).
        cond = tag_array.has_tag(project, term.text.strip().lower())
    elif field == "tag":
        cond = tag_condition(project, backend, term.text.strip().lower(), probe)
    elif field == "is-tagged":
        cond = tag_condition(project, backend, None, probe)
    elif field == "is-read":
        cond = _c.read.is_(True)
    elif field == "has-attachment":
        # The literal 0 (not a parameter) lets the planners use the partial index
        # ix_messages_project_attached (schema.py).
        cond = _c.attachment_count > literal_column("0")
    elif field == "has-inline":
        # `attachments` holds [part, name, type, id, size, inline] lists (storage/codec.py)
        cond = or_(_c.attachments.contains(",true],"), _c.attachments.endswith(",true]]"))
    elif field in ("before", "after"):
        if term.when is None:
            raise ValueError(f"search term {field}: has no date")
        micros = to_micros(term.when)
        cond = _c.created_us < micros if field == "before" else _c.created_us > micros
    elif field in ("larger", "smaller"):
        if term.size is None:
            raise ValueError(f"search term {field}: has no size")
        cond = _c.size > term.size if field == "larger" else _c.size < term.size
    else:  # pragma: no cover - Field is a closed Literal
        raise ValueError(f"unknown search field {field!r}")
    return not_(cond) if term.negated else cond


def indexed_needles(query: SearchQuery | None) -> list[str]:
    """The lower-cased texts of the query's terms that SQLite's full-text index can narrow:
    the ones required (not negated) on the indexed text fields, of any length (one or two
    characters: fulltext.sqlite_match reads the trigrams starting with them)."""
    if query is None:
        return []
    return [
        t.text.lower()
        for t in query.terms
        if not t.negated and t.field in _FIELD_COLUMNS and t.text
    ]


def short_needed(query: SearchQuery | None) -> bool:
    """Whether PostgreSQL's index of short terms would narrow the query: it has a required
    term of 1-2 letters or digits on the indexed text fields (fulltext.short_pattern)."""
    if query is None:
        return False
    return any(
        not t.negated
        and t.field in _FIELD_COLUMNS
        and len(t.text) < MIN_TERM
        and short_pattern(t.text.lower()) is not None
        for t in query.terms
    )


def short_needles(query: SearchQuery | None) -> list[str]:
    """The lower-cased texts of the query's required terms of 1-2 characters (any) on the
    indexed text fields, which PostgreSQL's block summaries narrow (block_summaries.py)."""
    return [n for n in indexed_needles(query) if len(n) < MIN_TERM]


def query_condition(
    query: SearchQuery | None,
    project: str,
    backend: str,
    probe: bool = False,
    fts: FtsFilter | None = None,
    short: bool = False,
) -> ColumnElement[bool] | None:
    """The conjunction of the query's terms; None for no query or an empty one.

    The caller restricts the statement to `project` itself; `project` here lets the tag
    sub-select use its (project, tag) index. `fts` (SQLite): the full-text filter
    fulltext.sqlite_match made for the query's `indexed_needles`, added as a filter (the
    terms' LIKEs stay the exact test). `short`: see `term_condition`."""
    if query is None or query.empty:
        return None
    conditions = [term_condition(t, project, backend, probe, short) for t in query.terms]
    if fts is not None and not probe:
        conditions.insert(0, sqlite_condition(fts))
    return conditions[0] if len(conditions) == 1 else and_(*conditions)


__all__ = [
    "indexed_needles",
    "query_condition",
    "short_needed",
    "short_needles",
    "tag_condition",
    "term_condition",
]
