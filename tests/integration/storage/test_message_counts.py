"""The per-project counters (storage/message_counts.py, migration 0022) on SQLite and
PostgreSQL: after every kind of change the inbox's total and unread equal a count over the
messages themselves; rows stored before the migration are counted by it; on PostgreSQL two
writers in separate transactions, and folds running beside them, never lose a message."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import create_engine, func, insert, select, text
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.platform import Project
from postroom.core.search import parse_query
from postroom.storage import (
    SqlMessageStore,
    codec,
    message_counts,
    migrate,
    open_store,
    resolve_target,
)
from postroom.storage.engine import open_platform_store
from postroom.storage.schema import messages


def counted(target: str, project: str) -> tuple[int, int]:
    """(total, unread) counted over the messages themselves."""
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:
            total, unread = conn.execute(
                select(func.count(), func.count().filter(messages.c.read.is_(False))).where(
                    messages.c.project == project
                )
            ).one()
            return int(total), int(unread)
    finally:
        engine.dispose()


def kept(store: SqlMessageStore, project: str) -> tuple[int, int]:
    """(total, unread) as the store answers them from the counters, by both read paths."""
    page = store.page(project, None, 0, 1)
    listed = store.list(project, None, 0, 0)
    assert (listed.total, listed.unread) == (page.total, page.unread)
    return page.total, page.unread


async def test_counts_follow_every_change(
    store: SqlMessageStore, target: str, clock: FakeClock
) -> None:
    assert kept(store, "default") == (0, 0)
    added = [await store.add(make_message(clock, subject=f"m{n}")) for n in range(12)]
    other = await store.add(make_message(clock, project="other"))
    assert kept(store, "default") == counted(target, "default") == (12, 12)
    assert kept(store, "other") == (1, 1)

    store.set_read("default", [m.id for m in added[:5]], None, True)
    assert kept(store, "default") == counted(target, "default") == (12, 7)
    store.set_read("default", [m.id for m in added[:5]], None, True)  # no change
    assert kept(store, "default") == (12, 7)
    store.set_read("default", [added[0].id], None, False)
    assert kept(store, "default") == counted(target, "default") == (12, 8)

    # Tags change no count; a search's read change and delete do.
    store.set_tags("default", [m.id for m in added[6:9]], ["keep", "Work"])
    store.rename_tag("default", "keep", "kept")
    store.delete_tag("default", "work")
    assert kept(store, "default") == (12, 8)
    store.set_read("default", None, parse_query("tag:kept", clock.now()), True)
    assert kept(store, "default") == counted(target, "default") == (12, 5)

    store.delete("default", [added[0].id, added[1].id], None)  # one unread, one read
    assert kept(store, "default") == counted(target, "default") == (10, 4)
    store.delete("default", None, parse_query("tag:kept", clock.now()))
    assert kept(store, "default") == counted(target, "default") == (7, 4)
    store.prune("default", 3, None)
    assert kept(store, "default") == counted(target, "default")
    assert kept(store, "default")[0] == 3
    store.set_read("default", None, None, True)
    assert kept(store, "default") == (3, 0)
    store.delete("default", None, None)
    assert kept(store, "default") == counted(target, "default") == (0, 0)
    assert kept(store, "other") == (1, 1)
    store.delete("other", [other.id], None)
    assert kept(store, "other") == (0, 0)


async def test_deleting_a_project_zeroes_its_counts(
    store: SqlMessageStore, target: str, clock: FakeClock
) -> None:
    platform = open_platform_store(target)
    try:
        platform.create_project(
            Project(id="acme", name="Acme", mode="capture", created=clock.now())
        )
        for _ in range(3):
            await store.add(make_message(clock, project="acme"))
        await store.add(make_message(clock))
        assert kept(store, "acme") == (3, 3)
        platform.delete_project("acme")
        assert kept(store, "acme") == counted(target, "acme") == (0, 0)
        assert kept(store, "default") == (1, 1)
        # A new project of the same id starts from nothing.
        platform.create_project(
            Project(id="acme", name="Acme", mode="capture", created=clock.now())
        )
        await store.add(make_message(clock, project="acme"))
        assert kept(store, "acme") == (1, 1)
    finally:
        platform.close()


async def test_page_tells_whether_more_follow(store: SqlMessageStore, clock: FakeClock) -> None:
    for n in range(5):
        await store.add(make_message(clock, subject="even" if n % 2 == 0 else "odd"))
    query = parse_query("subject:even", clock.now())
    first = store.page("default", query, 0, 2)
    assert [m.summary.subject for m in first.messages] == ["even", "even"]
    assert first.more and (first.total, first.unread) == (5, 5)
    last = store.page("default", query, 2, 2)
    assert len(last.messages) == 1 and not last.more
    exact = store.list("default", query, 0, 2)
    assert [m.id for m in exact.messages] == [m.id for m in first.messages]
    assert (exact.matched, exact.matched_unread) == (3, 3)
    assert not store.page("default", query, 3, 2).messages
    assert not store.page("default", None, 0, 5).more
    assert store.page("default", None, 0, 4).more


async def test_the_migration_counts_stored_rows(target: str, clock: FakeClock) -> None:
    """Rows stored at 0021 are counted by 0022, read flags included."""
    store = open_store(target, clock)
    await store.close()
    url = resolve_target(target).url
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0021")
        with engine.begin() as conn:
            rows = []
            for n in range(7):
                m = make_message(clock, project="p1" if n < 4 else "p2")
                row = dict(zip(codec.MESSAGE_COLUMNS, codec.message_row(m), strict=True))
                row["read"] = n in (0, 4, 5)
                rows.append(row)
            conn.execute(insert(messages), rows)
        with engine.begin() as conn:
            migrate.upgrade(conn)
    finally:
        engine.dispose()
    store = open_store(target, clock)
    try:
        assert kept(store, "p1") == (4, 3)
        assert kept(store, "p2") == (3, 1)
    finally:
        await store.close()


async def test_two_writers_on_postgresql(backend: str, target: str, clock: FakeClock) -> None:
    """Two stores (two writers, two transactions at a time) add messages to one project while
    reads fold the counters beside them: the count is every message, none twice."""
    if backend != "postgres":
        pytest.skip("two writers in separate transactions: PostgreSQL only")
    first, second = open_store(target, clock), open_store(target, FakeClock(clock.now()))
    stop = threading.Event()
    folds = 0

    def fold_forever() -> None:
        nonlocal folds
        engine = create_engine(resolve_target(target).url)
        try:
            while not stop.is_set():
                with engine.begin() as conn:
                    folds += message_counts.fold(conn, "default")
        finally:
            engine.dispose()

    folder = threading.Thread(target=fold_forever)
    folder.start()
    try:

        async def write(store: SqlMessageStore, clock: FakeClock, n: int) -> None:
            for chunk in range(n // 20):
                batch = []
                for _ in range(20):
                    clock.advance(0.001)
                    batch.append(store.add(make_message(clock, subject=f"c{chunk}")))
                await asyncio.gather(*batch)

        await asyncio.gather(
            write(first, FakeClock(clock.now()), 400),
            write(second, FakeClock(clock.now() + timedelta(hours=1)), 400),
        )
        await asyncio.to_thread(
            first.set_read, "default", None, parse_query("c3", clock.now()), True
        )
    finally:
        stop.set()
        folder.join()
    try:
        assert folds > 0
        assert kept(first, "default") == counted(target, "default")
        assert kept(first, "default")[0] == 800
        # More rows than FOLD_AT: a read folds them into one.
        engine = create_engine(resolve_target(target).url)
        try:
            with engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO message_counts (project, total, unread) "
                        "SELECT 'default', 0, 0 FROM generate_series(1, :n)"
                    ),
                    {"n": message_counts.FOLD_AT + 1},
                )
            before = kept(first, "default")
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT count(*) FROM message_counts WHERE project = 'default'")
                ).scalar()
            assert rows == 1
            assert kept(first, "default") == before == counted(target, "default")
        finally:
            engine.dispose()
    finally:
        await first.close()
        await second.close()
