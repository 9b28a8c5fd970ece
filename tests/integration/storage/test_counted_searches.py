"""Searches whose counts come from the counters instead of reading messages
(tag_search.counts: `tag:X`, `-tag:X`, `is:tagged` / `-is:tagged` from tagged_counts.py,
each alone or with `is:read` / `is:unread`): the counts `list` answers equal
the ones counted over the messages by the query's own condition, after every kind of change,
on both backends (the PostgreSQL cases skip with a reason when no server is reachable)."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from alembic import command
from sqlalchemy import and_, create_engine, inspect
from sqlalchemy.engine import Connection, make_url
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.search import parse_query
from postroom.storage import migrate, open_store, resolve_target, tag_search, tagged_counts
from postroom.storage.schema import messages
from postroom.storage.search_sql import query_condition
from postroom.storage.store import SqlMessageStore

QUERIES = [
    "",
    "tag:a",
    "tag:A",
    "-tag:a",
    "-tag:b",
    "tag:nobody",
    "-tag:nobody",
    "is:tagged",
    "-is:tagged",
    "is:unread",
    "is:read",
    "tag:a is:unread",
    "-tag:a is:read",
    "is:tagged is:unread",
    "-is:tagged is:read",
    "is:read is:unread",
    "is:tagged -tag:b",  # two tag terms: counted by reading the messages
    "tag:a subject:hello",
]

# The ones the counters answer.
COUNTED = set(QUERIES[1:16])


def scanned(store: SqlMessageStore, project: str, text_: str, clock: FakeClock) -> tuple[int, int]:
    """(matched, unread) counted over the messages with the query's condition."""
    cond = query_condition(parse_query(text_, clock.now()), project, store.backend)
    where = (
        messages.c.project == project if cond is None else and_(messages.c.project == project, cond)
    )

    def work(conn: Connection) -> tuple[int, int]:
        return SqlMessageStore._counts(conn, where)

    return store._run(store._read, work)


def listed(store: SqlMessageStore, project: str, text_: str, clock: FakeClock) -> tuple[int, int]:
    found = store.list(project, parse_query(text_, clock.now()), 0, 0)
    return found.matched, found.matched_unread


def check(store: SqlMessageStore, clock: FakeClock, project: str = "default") -> None:
    for text_ in QUERIES:
        assert listed(store, project, text_, clock) == scanned(store, project, text_, clock), text_


async def test_counted_queries_skip_the_messages(store: SqlMessageStore, clock: FakeClock) -> None:
    """The queries of COUNTED are answered by tag_search.counts (else it says None)."""
    await store.add(make_message(clock, tags=("a",)))

    def answered(conn: Connection) -> set[str]:
        return {
            q
            for q in QUERIES
            if tag_search.counts(
                conn, "default", parse_query(q, clock.now()), store.backend, (1, 1)
            )
            is not None
        }

    found = store._run(store._read, answered)
    assert found == COUNTED


async def test_counts_equal_the_scan_after_every_change(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    spread = [(), ("a",), ("a", "B"), ("b",), ("A", "c"), (), ("c",), (), ("a",), ()]
    added = [await store.add(make_message(clock, tags=tags)) for tags in spread]
    await store.add(make_message(clock, tags=("a",), project="other"))
    await store.add(make_message(clock, project="other"))
    check(store, clock)
    check(store, clock, "other")
    check(store, clock, "nobody")

    store.set_read("default", [m.id for m in added[:5]], None, True)
    check(store, clock)
    store.set_tags("default", [added[0].id, added[1].id], ["x"])  # untagged gets, tagged swaps
    store.set_tags("default", [added[2].id], [])  # last tags removed
    check(store, clock)
    store.set_tags("default", [added[7].id, added[9].id], ["p", "q"])  # two first tags at once
    check(store, clock)
    store.set_read("default", None, parse_query("tag:x", clock.now()), False)
    store.set_read("default", None, parse_query("is:unread -is:tagged", clock.now()), True)
    check(store, clock)
    store.rename_tag("default", "c", "A")  # merges into a on the message with both
    check(store, clock)
    store.delete_tag("default", "x")
    check(store, clock)
    store.delete("default", [added[3].id, added[5].id], None)
    store.delete("default", None, parse_query("tag:a is:unread", clock.now()))
    check(store, clock)
    check(store, clock, "other")
    store.delete("default", None, None)
    check(store, clock)
    assert listed(store, "default", "is:tagged", clock) == (0, 0)
    assert listed(store, "other", "is:tagged", clock) == (1, 1)


async def test_the_migration_counts_stored_tagged_messages(
    backend: str, target: str, clock: FakeClock
) -> None:
    """Tagged messages stored at 0027 are counted by 0028, read flags included."""
    store = open_store(target, clock)
    try:
        stored = [await store.add(make_message(clock, tags=("a", "B")[: n % 3])) for n in range(7)]
        store.set_read("default", [stored[1].id, stored[2].id], None, True)
    finally:
        await store.close()
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0027")
        with engine.connect() as conn:
            assert "tagged_counts" not in inspect(conn).get_table_names()
        with engine.begin() as conn:
            migrate.upgrade(conn)
    finally:
        engine.dispose()
    store = open_store(target, clock)
    try:
        assert listed(store, "default", "is:tagged", clock) == (4, 2)
        check(store, clock)
    finally:
        await store.close()


async def test_pages_agree_with_the_counts(store: SqlMessageStore, clock: FakeClock) -> None:
    """`page` skips reading messages when the counters say no match is left from `start`; its
    rows are still those of `list` (whose counts are checked against the scan above)."""
    spread = [(), ("a",), ("a", "B"), ("b",), ("A", "c"), (), ("c",), (), ("a",), ()]
    added = [await store.add(make_message(clock, tags=tags)) for tags in spread]
    store.set_read("default", [m.id for m in added[::3]], None, True)
    for text_ in QUERIES:
        query = parse_query(text_, clock.now())
        for start in (0, 2, 5, 20):
            listed_ = store.list("default", query, start, 3)
            paged = store.page("default", query, start, 3)
            assert [m.id for m in paged.messages] == [m.id for m in listed_.messages], text_
            assert paged.more == (start + 3 < listed_.matched), (text_, start)


def _tag(url: str, message_id: str, tag: str, ready: threading.Event, go: threading.Event) -> None:
    """Add `tag` to the message in a transaction that commits once `go` is set."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO message_tags (message_id, project, tag, tag_lc, created_us, seq)"
            " SELECT id, project, %s, %s, created_us, seq FROM messages WHERE id = %s",
            (tag, tag, message_id),
        )
        ready.set()
        go.wait(10)
    # leaving the block commits


async def test_postgresql_concurrent_first_tags_count_once(
    backend: str, store: SqlMessageStore, target: str, clock: FakeClock
) -> None:
    """Two transactions give one untagged message its first tag at the same time: the second
    trigger waits for the first transaction's lock and then sees its tag."""
    if backend != "postgres":
        pytest.skip("concurrent writers: PostgreSQL only (SQLite has one writer at a time)")
    message = await store.add(make_message(clock))
    url = make_url(target).set(drivername="postgresql").render_as_string(hide_password=False)
    first_ready, second_ready, go = threading.Event(), threading.Event(), threading.Event()
    first = threading.Thread(target=_tag, args=(url, message.id, "a", first_ready, go))
    first.start()
    assert first_ready.wait(10)
    second = threading.Thread(
        target=_tag, args=(url, message.id, "b", second_ready, threading.Event())
    )
    second.start()  # its trigger waits for the first's lock on the message
    time.sleep(0.3)
    go.set()
    first.join(10)
    second.join(10)
    assert listed(store, "default", "is:tagged", clock) == (1, 1)
    check(store, clock)


async def test_postgresql_folds_the_tagged_delta_rows(
    backend: str, store: SqlMessageStore, target: str, clock: FakeClock
) -> None:
    if backend != "postgres":
        pytest.skip("delta rows and folds: PostgreSQL only")
    added = [await store.add(make_message(clock, tags=("t",))) for _ in range(5)]
    for m in added[:3]:
        store.set_read("default", [m.id], None, True)
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:
            assert tagged_counts.read(conn, "default")[:2] == (5, 2)
            assert tagged_counts.read(conn, "default")[2] > 1
        with engine.begin() as conn:
            assert tagged_counts.fold(conn, "default")
        with engine.connect() as conn:
            assert tagged_counts.read(conn, "default") == (5, 2, 1)
    finally:
        engine.dispose()
    check(store, clock)
