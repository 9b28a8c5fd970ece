"""A `tag:` search walks its tag's messages newest first from the tag index (store.py
`_tag_walk`, tag_search.walk), whose rows hold each message's order key (created_us, seq,
schema.py): its pages are its matches among the messages listed newest first, equal times
in insertion order, however old the tag's messages, after tags are
set, renamed, removed and messages deleted, and after migration 0030 filled the key of the
tags stored before it, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import create_engine
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.search import parse_query
from postroom.core.types import MessageRecord
from postroom.storage import SqlMessageStore, migrate, open_store, resolve_target

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_BOUND = START + timedelta(minutes=5)
_MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)


def _has(record: MessageRecord, tag: str) -> bool:
    return tag in (t.lower() for t in record.tags)


def _sender(record: MessageRecord) -> str:
    found = record.summary.from_
    return "" if found is None else f"{found.name} <{found.address}>".lower()


# Each query and which messages it matches, told from the records (their tags are read by
# message id, their order is the listing's: nothing from the tag rows' order key).
QUERIES: list[tuple[str, Callable[[MessageRecord], bool]]] = [
    ("tag:old", lambda m: _has(m, "old")),
    ("tag:OLD is:unread", lambda m: _has(m, "old") and not m.read),
    ("tag:old subject:even", lambda m: _has(m, "old") and "even" in m.summary.subject),
    ("tag:old -tag:new", lambda m: _has(m, "old") and not _has(m, "new")),
    ("tag:old tag:new", lambda m: _has(m, "old") and _has(m, "new")),
    ("tag:new", lambda m: _has(m, "new")),
    ("tag:new -subject:even", lambda m: _has(m, "new") and "even" not in m.summary.subject),
    ("tag:old from:carol", lambda m: _has(m, "old") and "carol" in _sender(m)),
    ("tag:absent", lambda m: False),
    # Dates bound the walk in the tag index (tag_search.date_range); two messages sit on
    # the bound itself.
    ("tag:old before:2026-03-01 12:05", lambda m: _has(m, "old") and m.created < _BOUND),
    ("tag:old after:2026-03-01 12:05", lambda m: _has(m, "old") and m.created > _BOUND),
    ("tag:old -before:2026-03-01 12:05", lambda m: _has(m, "old") and m.created >= _BOUND),
    ("tag:old -after:2026-03-01 12:05", lambda m: _has(m, "old") and m.created <= _BOUND),
    (
        "tag:old after:2026-03-01 12:02 -after:2026-03-01 12:09 subject:even",
        lambda m: (
            _has(m, "old")
            and START + timedelta(minutes=2) < m.created <= START + timedelta(minutes=9)
            and "even" in m.summary.subject
        ),
    ),
    ("tag:old after:2026-03-02 00:00", lambda m: _has(m, "old") and m.created > _MIDNIGHT),
]
PAGES = [(0, 5), (0, 50), (3, 4), (5, 5), (10, 7), (20, 50)]


async def _seed(store: SqlMessageStore, clock: FakeClock) -> list[str]:
    """30 messages tagged `old` (two at each time, then one stored late with an older time
    than all), then 40 newer untagged ones; ids newest first."""
    for n in range(30):
        tags = ("old",) + (("new",) if n % 3 == 0 else ())
        subject = "even" if n % 2 == 0 else "odd"
        sender = "Carol <carol@example.com>" if n % 4 == 1 else "Alice <alice@example.com>"
        # step 0 every other message: two messages at each time, ordered by seq
        await store.add(
            make_message(
                clock, step=0 if n % 2 == 0 else 60, subject=subject, tags=tags, from_=sender
            )
        )
    for _ in range(40):
        await store.add(make_message(clock, step=60, tags=("new",) if _ % 5 == 0 else ()))
    # Stored last, older than every message: its seq is the highest, its time the lowest.
    await store.add(make_message(clock, created=START - timedelta(days=1), tags=("old",)))
    ids = [m.id for m in store.page("default", None, 0, 200).messages]
    store.set_read("default", ids[::3], None, True)
    return ids


def _pages(store: SqlMessageStore) -> dict[tuple[str, int, int], tuple[list[str], bool]]:
    """Each query's pages: the ids and whether more follow."""
    now = START + timedelta(days=2)
    found = {}
    for text, _ in QUERIES:
        query = parse_query(text, now)
        for start, limit in PAGES:
            page = store.page("default", query, start, limit)
            listed = store.list("default", query, start, limit)
            assert [m.id for m in listed.messages] == [m.id for m in page.messages], text
            found[(text, start, limit)] = ([m.id for m in page.messages], page.more)
    return found


def _assert_pages_right(store: SqlMessageStore) -> None:
    """Every query's pages are its matches among all messages listed newest first."""
    listing = store.page("default", None, 0, 500).messages
    pages = _pages(store)
    for text, matches in QUERIES:
        matched = [m.id for m in listing if matches(m)]
        for start, limit in PAGES:
            expected = (matched[start : start + limit], len(matched) > start + limit)
            assert pages[(text, start, limit)] == expected, (text, start, limit)


def _old_newest_first(store: SqlMessageStore) -> list[str]:
    return [m.id for m in store.page("default", None, 0, 200).messages if "old" in m.tags]


async def test_old_tag_pages_newest_first(store: SqlMessageStore, clock: FakeClock) -> None:
    await _seed(store, FakeClock(START))
    old = _old_newest_first(store)
    assert len(old) == 31
    now = START + timedelta(days=2)
    page = store.page("default", parse_query("tag:old", now), 0, 50)
    assert [m.id for m in page.messages] == old and not page.more
    second = store.page("default", parse_query("tag:Old", now), 10, 10)
    assert [m.id for m in second.messages] == old[10:20] and second.more
    last = store.page("default", parse_query("tag:old", now), 30, 10)
    assert [m.id for m in last.messages] == old[30:] and not last.more
    _assert_pages_right(store)


async def test_pages_follow_retagging_untagging_and_deletes(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    ids = await _seed(store, FakeClock(START))
    old = _old_newest_first(store)
    # Retag: the newest untagged messages and some old ones get `old` (set_tags replaces).
    store.set_tags("default", ids[:3] + old[5:8], ["Old", "new"])
    _assert_pages_right(store)
    now = START + timedelta(days=2)
    first = store.page("default", parse_query("tag:old", now), 0, 4).messages
    assert [m.id for m in first] == [*ids[:3], old[0]]
    # Untag some, the tag is renamed into another and back, messages deleted.
    store.set_tags("default", old[:4], [])
    _assert_pages_right(store)
    store.rename_tag("default", "new", "old")
    _assert_pages_right(store)
    store.rename_tag("default", "old", "older")
    store.delete("default", old[10:14] + ids[:1], None)
    store.rename_tag("default", "older", "old")
    _assert_pages_right(store)
    store.delete_tag("default", "old")
    page = store.page("default", parse_query("tag:old", now), 0, 10)
    assert page.messages == () and not page.more


async def test_the_migration_fills_the_order_keys(target: str) -> None:
    """Tags stored at 0029 are walked in order once 0030 has copied their messages' keys."""
    store = open_store(target, FakeClock())
    try:
        await _seed(store, FakeClock(START))
        before = _pages(store)
    finally:
        await store.close()
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0029")
        with engine.begin() as conn:
            migrate.upgrade(conn)
    finally:
        engine.dispose()
    store = open_store(target, FakeClock())
    try:
        assert _pages(store) == before
        _assert_pages_right(store)
        # and the tags written after the migration too
        await store.add(make_message(FakeClock(START + timedelta(days=3)), tags=("old",)))
        _assert_pages_right(store)
    finally:
        await store.close()
