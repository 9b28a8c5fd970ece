"""Tag counts for the inbox's sidebar: one grouped query, per project, tags merged without
regard to case (as `tags()`), with totals and unread, on both backends."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine, func, select
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.platform import Project
from postroom.core.search import parse_query
from postroom.storage import migrate, open_store, resolve_target, tag_counters
from postroom.storage.engine import open_platform_store
from postroom.storage.schema import message_tags, messages
from postroom.storage.store import SqlMessageStore
from postroom.storage.tag_counts import TagCount, tag_counts


async def test_counts_per_tag_total_and_unread(store: SqlMessageStore, clock: FakeClock) -> None:
    first = make_message(clock, tags=("alpha", "beta"))
    second = make_message(clock, tags=("Alpha",))
    third = make_message(clock, tags=("beta",))
    elsewhere = make_message(clock, tags=("alpha",), project="other")
    for message in (first, second, third, elsewhere):
        await store.add(message)
    store.set_read("default", [third.id], None, True)
    counted = tag_counts(store, "default", 10)
    assert [(t.name.lower(), t.total, t.unread) for t in counted] == [
        ("alpha", 2, 2),
        ("beta", 2, 1),
    ]
    assert [t.name for t in counted] == store.tags("default")
    assert tag_counts(store, "default", 1) == [counted[0]]
    assert tag_counts(store, "other", 10) == [TagCount("alpha", 1, 1)]
    assert tag_counts(store, "nobody", 10) == []


# The counters (storage/tag_counters.py, migration 0024) against a join over the tags
# themselves, after every kind of change.


def joined(target: str, project: str) -> list[tuple[str, int, int]]:
    """(spelling, total, unread) per lower-cased tag, counted over message_tags and messages."""
    t, m = message_tags.c, messages.c
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(func.min(t.tag), func.count(), func.count().filter(m.read.is_(False)))
                .select_from(message_tags.join(messages, m.id == t.message_id))
                .where(t.project == project)
                .group_by(t.tag_lc)
                .order_by(t.tag_lc)
            ).all()
            return [(str(n), int(c), int(u)) for n, c, u in rows]
    finally:
        engine.dispose()


def kept(store: SqlMessageStore, project: str) -> list[tuple[str, int, int]]:
    return [(c.name, c.total, c.unread) for c in tag_counts(store, project, 1000)]


async def test_counters_follow_tags_read_flags_and_deletes(
    store: SqlMessageStore, target: str, clock: FakeClock
) -> None:
    added = [await store.add(make_message(clock, tags=("a",) if n < 6 else ())) for n in range(10)]
    assert kept(store, "default") == joined(target, "default") == [("a", 6, 6)]

    # Tag added (to tagged and untagged messages), and read flags changed.
    store.set_tags("default", [m.id for m in added[4:8]], ["a", "Work"])
    store.set_read("default", [m.id for m in added[:3]], None, True)
    assert kept(store, "default") == joined(target, "default") == [("a", 8, 5), ("Work", 4, 4)]
    store.set_read("default", None, parse_query("tag:work", clock.now()), True)
    store.set_read("default", [added[0].id], None, False)
    assert kept(store, "default") == joined(target, "default") == [("a", 8, 2), ("Work", 4, 0)]

    # Tag removed, renamed (merging into an existing one), deleted everywhere.
    store.set_tags("default", [added[4].id], [])
    assert kept(store, "default") == joined(target, "default") == [("a", 7, 2), ("Work", 3, 0)]
    store.rename_tag("default", "work", "A")
    assert kept(store, "default") == joined(target, "default")
    assert [(n.lower(), t) for n, t, _ in kept(store, "default")] == [("a", 7)]
    store.rename_tag("default", "a", "b")
    assert kept(store, "default") == joined(target, "default") == [("b", 7, 2)]
    store.delete_tag("default", "B")
    assert kept(store, "default") == joined(target, "default") == []

    # Messages deleted, unread and read ones, by id and by query.
    store.set_tags("default", [m.id for m in added], ["x"])
    store.set_read("default", None, None, False)
    store.set_read("default", [m.id for m in added[:5]], None, True)
    assert kept(store, "default") == joined(target, "default") == [("x", 10, 5)]
    store.delete("default", [added[0].id, added[9].id], None)
    assert kept(store, "default") == joined(target, "default") == [("x", 8, 4)]
    store.delete("default", None, parse_query("is:unread", clock.now()))
    assert kept(store, "default") == joined(target, "default") == [("x", 4, 0)]
    store.delete("default", None, None)  # the project cleared
    assert kept(store, "default") == joined(target, "default") == []


async def test_deleting_a_project_drops_its_tag_counts(
    store: SqlMessageStore, target: str, clock: FakeClock
) -> None:
    platform = open_platform_store(target)
    try:
        platform.create_project(
            Project(id="acme", name="Acme", mode="capture", created=clock.now())
        )
        for n in range(3):
            await store.add(make_message(clock, project="acme", tags=("t", f"n{n}")))
        await store.add(make_message(clock, tags=("t",)))
        assert kept(store, "acme") == [("n0", 1, 1), ("n1", 1, 1), ("n2", 1, 1), ("t", 3, 3)]
        platform.delete_project("acme")
        assert kept(store, "acme") == joined(target, "acme") == []
        assert kept(store, "default") == [("t", 1, 1)]
        platform.create_project(
            Project(id="acme", name="Acme", mode="capture", created=clock.now())
        )
        await store.add(make_message(clock, project="acme", tags=("t",)))
        assert kept(store, "acme") == [("t", 1, 1)]
    finally:
        platform.close()


async def test_the_migration_counts_stored_tags(target: str, clock: FakeClock) -> None:
    """Tags stored at 0023 are counted by 0024, read flags included."""
    store = open_store(target, clock)
    try:
        stored = [await store.add(make_message(clock, tags=("a", "B"))) for _ in range(4)]
        store.set_read("default", [stored[0].id], None, True)
    finally:
        await store.close()
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0023")
        with engine.begin() as conn:
            migrate.upgrade(conn)
    finally:
        engine.dispose()
    store = open_store(target, clock)
    try:
        assert kept(store, "default") == joined(target, "default") == [("a", 4, 3), ("B", 4, 3)]
    finally:
        await store.close()


async def test_postgresql_folds_the_delta_rows(
    backend: str, store: SqlMessageStore, target: str, clock: FakeClock
) -> None:
    if backend != "postgres":
        pytest.skip("delta rows and folds: PostgreSQL only")
    added = [await store.add(make_message(clock, tags=("t",))) for _ in range(5)]
    for m in added[:3]:
        store.set_read("default", [m.id], None, True)
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.begin() as conn:
            assert tag_counters.fold(conn, "default")
        with engine.connect() as conn:
            assert tag_counters.read(conn, "default") == ([("t", 5, 2)], 1)
    finally:
        engine.dispose()
    assert kept(store, "default") == joined(target, "default") == [("t", 5, 2)]
