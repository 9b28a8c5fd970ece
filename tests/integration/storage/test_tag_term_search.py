"""A `tag:` term combined with a text term that the tag's newest messages do not hold is
answered from an index instead of a walk of all the tag's messages (store.py `_tag_walk`):
SQLite intersects its full-text candidates with the tag's rows (tag_search.walk `fts`, as a
temporary index of the candidates or a merge with the tag's seqs), PostgreSQL reads the
messages from the partial GIN index on (tags_lc, the full-text concatenation) of
tag_array.py. The pages are those of the plain LIKE search, on SQLite and PostgreSQL, for
negations, several tags, another project holding the same tag and terms, and after the tags
are set, renamed, removed and messages deleted; PostgreSQL's `messages.tags_lc` stays the
messages' tags through all of it and migration 0031 fills it for the tags stored before."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.search import parse_query
from postroom.storage import (
    SqlMessageStore,
    fulltext,
    migrate,
    open_store,
    resolve_target,
    tag_array,
    tag_search,
)
from postroom.storage.schema import messages
from postroom.storage.search_sql import query_condition

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NEVER, ALWAYS = -1, 10**9

QUERIES = [
    "tag:old subject:invoice",  # one old message has it (n == 4), the newer ones many
    "tag:old invoice",
    "tag:OLD subject:order",  # every 4th
    "tag:old subject:rare-6",
    "tag:old from:d3.example",  # none of the tag's (odd senders only on odd messages)
    "tag:old from:d2.example",
    "tag:old zq",  # two characters, absent
    "tag:old o",  # one character, common
    "tag:old invoice -tag:new",
    "tag:old tag:new order",
    "tag:new tag:old invoice",
    "tag:old -subject:order",
    "tag:old order -subject:invoice",
    "tag:old nothing-here",
    "tag:old note",  # common, and in some of the tag's messages
    "tag:absent invoice",
    "tag:old invoice is:unread",
    "tag:old before:2026-03-01T14:00 order",
    "-tag:old invoice",
]
PAGES = [(0, 3), (0, 50), (2, 4), (6, 5)]


async def _seed(store: SqlMessageStore) -> None:
    """40 messages: the older 24 tagged `old` on even n (one `invoice` among them, n == 4),
    `new` on every 3rd; the 16 newer ones untagged but for `new`, half of them invoices.
    Another project holds `old` messages with every term too."""
    clock = FakeClock(START)
    for n in range(40):
        old = n < 24 and n % 2 == 0
        tags = (("Old",) if old else ()) + (("new",) if n % 3 == 0 else ())
        if n == 4 or (n >= 24 and n % 2):
            subject = f"Invoice {n}"
        elif n % 4 == 0:
            subject = f"Order {n}"
        else:
            subject = f"Note {n}"
        await store.add(
            make_message(
                clock,
                step=600,
                subject=subject,
                from_=f"Sender {n} <s{n}@d{n % 4}.example>",
                body=f"rare-{n} text",
                tags=tags,
            )
        )
    for n in range(6):
        await store.add(
            make_message(
                clock,
                project="other",
                subject=f"Invoice order rare-6 {n}",
                from_="s@d3.example",
                tags=("old", "new"),
            )
        )
    ids = [m.id for m in store.page("default", None, 0, 100).messages]
    store.set_read("default", ids[::5], None, True)


def _baseline(store: SqlMessageStore) -> Iterator[None]:
    """The plain search while the block runs: every message of the project tested by the
    terms' LIKEs and tag look-ups (no tag walk, no window, no full-text index)."""
    saved = store.page_window, store.tag_drive_max, store.tag_walk
    store.page_window, store.tag_drive_max, store.tag_walk = ALWAYS, NEVER, False
    try:
        yield
    finally:
        store.page_window, store.tag_drive_max, store.tag_walk = saved


def _expected(store: SqlMessageStore) -> dict[tuple[str, int, int], tuple[list[str], bool]]:
    now = START + timedelta(days=2)
    found = {}
    for _ in _baseline(store):
        for q in QUERIES:
            for start, limit in PAGES:
                page = store.page("default", parse_query(q, now), start, limit)
                found[(q, start, limit)] = ([m.id for m in page.messages], page.more)
    return found


def _assert_pages_right(store: SqlMessageStore) -> None:
    expected = _expected(store)
    now = START + timedelta(days=2)
    for q in QUERIES:
        for start, limit in PAGES:
            page = store.page("default", parse_query(q, now), start, limit)
            listed = store.list("default", parse_query(q, now), start, limit)
            got = ([m.id for m in page.messages], page.more)
            assert got == expected[(q, start, limit)], (q, start, limit)
            assert [m.id for m in listed.messages] == got[0], (q, start, limit)


def _spy_walks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, bool]]:
    """(with full-text candidates, merged) of each tag walk built."""
    seen: list[tuple[bool, bool]] = []
    walk = tag_search.walk

    def spied(*args: Any, **kwargs: Any) -> Any:
        seen.append((kwargs.get("fts") is not None, bool(kwargs.get("merged"))))
        return walk(*args, **kwargs)

    monkeypatch.setattr(tag_search, "walk", spied)
    return seen


@pytest.mark.parametrize("rare", [fulltext.RARE, 2])
async def test_pages_equal_the_like_search(
    store: SqlMessageStore, backend: str, rare: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tag window of 5 leaves most pages to the indexes; `rare` 2 makes SQLite's trigrams
    common (the window first, then the candidates as a temporary index or merged)."""
    monkeypatch.setattr(fulltext, "DRAIN_EVERY", 10)  # indexed but the last few (waiting)
    await _seed(store)
    monkeypatch.setattr(fulltext, "RARE", rare)
    walks = _spy_walks(monkeypatch)
    _assert_pages_right(store)  # the default window (1,000: every walk whole)
    store.tag_window = 5
    walks.clear()
    _assert_pages_right(store)
    if backend == "sqlite":
        assert (True, False) in walks  # candidates probed
        if rare == 2:
            assert (True, True) in walks  # merged with the tag's seqs


async def test_the_merge_and_the_index_are_used(
    store: SqlMessageStore, backend: str, target: str
) -> None:
    """SQLite merges the candidates with the tag's seqs (no temporary index of all of them);
    PostgreSQL answers a tag and a text term together from tag_array.INDEX."""
    await _seed(store)
    query = parse_query("tag:old invoice", START)
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:
            if backend == "sqlite":
                found = fulltext.sqlite_sparsest(conn, ["invoice"])
                assert found is not None
                page = tag_search.walk(
                    query, "default", "sqlite", "old", 0, 5, fts=found[0], merged=True
                )
                compiled = page.compile(dialect=conn.dialect)
                assert compiled.positiontup is not None
                params = tuple(compiled.params[k] for k in compiled.positiontup)
                rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)
                plan = " | ".join(str(r[3]) for r in rows)
                assert "MERGE (INTERSECT)" in plan
                assert "SCAN messages_fts VIRTUAL TABLE" in plan
            else:
                cond = query_condition(query, "default", "postgresql")
                assert cond is not None
                stmt = select(messages.c.seq).where(messages.c.project == "default", cond)
                compiled = stmt.compile(dialect=conn.dialect)
                # The plan of a million messages, not of these few: no scan of the table,
                # nor of the project's indexes (dropped in this transaction, rolled back).
                conn.exec_driver_sql("SET enable_seqscan TO off")
                for index in ("ix_messages_project_read", "ix_messages_project_created"):
                    conn.exec_driver_sql(f"DROP INDEX {index}")
                rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
                plan = "\n".join(str(r[0]) for r in rows)
                conn.rollback()
                assert tag_array.INDEX in plan
                index_cond = [line for line in plan.splitlines() if "Index Cond" in line]
                assert any("tags_lc @>" in line and "~~" in line for line in index_cond), plan
    finally:
        engine.dispose()


def _arrays(engine: Engine) -> tuple[dict[str, list[str] | None], dict[str, list[str]]]:
    """Each message's `tags_lc`, and its tags as message_tags holds them (sorted)."""
    with engine.connect() as conn:
        arrays = {str(i): a for i, a in conn.execute(text("SELECT id, tags_lc FROM messages"))}
        tags: dict[str, list[str]] = {}
        for i, t in conn.execute(text("SELECT message_id, tag_lc FROM message_tags")):
            tags.setdefault(str(i), []).append(str(t))
    return arrays, {i: sorted(t) for i, t in tags.items()}


def _assert_arrays_right(target: str) -> None:
    engine = create_engine(resolve_target(target).url)
    try:
        arrays, tags = _arrays(engine)
    finally:
        engine.dispose()
    assert arrays == {i: tags.get(i) for i in arrays}


async def test_tag_edits_keep_pages_and_arrays_right(
    store: SqlMessageStore, backend: str, target: str
) -> None:
    await _seed(store)
    store.tag_window = 5
    postgres = backend == "postgres"
    if postgres:
        _assert_arrays_right(target)
    ids = [m.id for m in store.page("default", None, 0, 100).messages]  # newest first
    old = [m.id for m in store.page("default", parse_query("tag:old", START), 0, 100).messages]
    steps = [
        lambda: store.set_tags("default", ids[:4] + old[-3:], ["OLD", "extra", "Ünïcode"]),
        lambda: store.set_tags("default", old[:2], []),
        lambda: store.rename_tag("default", "extra", "new"),  # merges into `new`
        lambda: store.rename_tag("default", "new", "renamed"),
        lambda: store.delete("default", old[3:5] + ids[5:6], None),
        lambda: store.delete_tag("default", "renamed"),
        lambda: store.rename_tag("default", "old", "Old"),
    ]
    for step in steps:
        step()
        _assert_pages_right(store)
        if postgres:
            _assert_arrays_right(target)
    await store.add(make_message(FakeClock(START), subject="Invoice late", tags=("old", "Z")))
    _assert_pages_right(store)
    if postgres:
        _assert_arrays_right(target)


async def test_the_migration_fills_the_arrays(target: str, backend: str) -> None:
    store = open_store(target, FakeClock())
    try:
        await _seed(store)
    finally:
        await store.close()
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0030")
        with engine.begin() as conn:
            migrate.upgrade(conn)
    finally:
        engine.dispose()
    if backend == "postgres":
        _assert_arrays_right(target)
    store = open_store(target, FakeClock())
    try:
        store.tag_window = 5
        _assert_pages_right(store)
    finally:
        await store.close()
