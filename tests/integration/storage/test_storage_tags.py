"""Tags: case-preserving names matched case-insensitively, set/rename/delete."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, NotFound
from postroom.core.search import SearchQuery, Term
from postroom.storage import SqlMessageStore, open_store


def tagged(store: SqlMessageStore, tag: str) -> set[str]:
    page = store.list("default", SearchQuery((Term("tag", text=tag),)), 0, 1000)
    return {m.id for m in page.messages}


async def test_tags_at_ingest_keep_the_first_spelling(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    first = make_message(clock, tags=("Work", " urgent ", "WORK", ""))
    await store.add(first)
    second = make_message(clock, tags=("work", "Later"))
    await store.add(second)
    assert store.get("default", first.id).tags == ("urgent", "Work")
    assert store.get("default", second.id).tags == ("Later", "Work")
    assert store.tags("default") == ["Later", "urgent", "Work"]
    assert tagged(store, "wOrK") == {first.id, second.id}


async def test_tags_in_one_batch_share_a_spelling(store: SqlMessageStore, clock: FakeClock) -> None:
    import asyncio

    messages = [make_message(clock, tags=("Alpha",)), make_message(clock, tags=("ALPHA",))]
    await asyncio.gather(*(store.add(m) for m in messages))
    assert store.tags("default") == ["Alpha"]
    assert {store.get("default", m.id).tags for m in messages} == {("Alpha",)}


async def test_tags_are_per_project(store: SqlMessageStore, clock: FakeClock) -> None:
    await store.add(make_message(clock, tags=("mine",)))
    await store.add(make_message(clock, tags=("Theirs", "MINE"), project="other"))
    assert store.tags("default") == ["mine"]
    assert store.tags("other") == ["MINE", "Theirs"]


async def test_set_tags_replaces(store: SqlMessageStore, clock: FakeClock) -> None:
    a = make_message(clock, tags=("old", "keep"))
    b = make_message(clock)
    c = make_message(clock, tags=("untouched",))
    for m in (a, b, c):
        await store.add(m)
    store.set_tags("default", [a.id, b.id], ["Keep", "New", "new"])
    assert store.get("default", a.id).tags == ("Keep", "New")
    assert store.get("default", b.id).tags == ("Keep", "New")
    assert store.get("default", c.id).tags == ("untouched",)
    assert store.tags("default") == ["Keep", "New", "untouched"]  # "old" is gone
    store.set_tags("default", [a.id], [])
    assert store.get("default", a.id).tags == ()
    # The spelling of a message's own tag can change when nothing else uses it.
    store.set_tags("default", [c.id], ["UNTOUCHED"])
    assert store.tags("default") == ["Keep", "New", "UNTOUCHED"]


async def test_set_tags_on_unknown_message_changes_nothing(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    a = make_message(clock, tags=("before",))
    other = make_message(clock, project="other")
    await store.add(a)
    await store.add(other)
    for missing in ("01JZZZZZZZZZZZZZZZZZZZZZZZ", other.id):
        with pytest.raises(NotFound):
            store.set_tags("default", [a.id, missing], ["after"])
    assert store.get("default", a.id).tags == ("before",)


async def test_rename_tag(store: SqlMessageStore, clock: FakeClock) -> None:
    a = make_message(clock, tags=("draft",))
    b = make_message(clock, tags=("Draft", "x"))
    elsewhere = make_message(clock, tags=("draft",), project="other")
    for m in (a, b, elsewhere):
        await store.add(m)
    store.rename_tag("default", "DRAFT", "Review")
    assert store.tags("default") == ["Review", "x"]
    assert tagged(store, "review") == {a.id, b.id}
    assert tagged(store, "draft") == set()
    assert store.tags("other") == ["draft"]
    # Case-only rename.
    store.rename_tag("default", "review", "REVIEW")
    assert store.tags("default") == ["REVIEW", "x"]
    with pytest.raises(NotFound):
        store.rename_tag("default", "absent", "whatever")
    with pytest.raises(InvalidInput):
        store.rename_tag("default", "x", "   ")


async def test_rename_into_an_existing_tag_merges(store: SqlMessageStore, clock: FakeClock) -> None:
    both = make_message(clock, tags=("a", "B"))
    only_a = make_message(clock, tags=("a",))
    only_b = make_message(clock, tags=("b",))
    for m in (both, only_a, only_b):
        await store.add(m)
    store.rename_tag("default", "A", "b")
    assert store.tags("default") == ["b"]
    for m in (both, only_a, only_b):
        assert store.get("default", m.id).tags == ("b",)


async def test_delete_tag(store: SqlMessageStore, clock: FakeClock) -> None:
    a = make_message(clock, tags=("spam", "ham"))
    b = make_message(clock, tags=("SPAM",))
    for m in (a, b):
        await store.add(m)
    store.delete_tag("default", "Spam")
    assert store.tags("default") == ["ham"]
    assert store.get("default", a.id).tags == ("ham",)
    assert store.get("default", b.id).tags == ()
    assert store.list("default", None, 0, 0).total == 2  # messages stay
    with pytest.raises(NotFound):
        store.delete_tag("default", "spam")


async def test_a_page_carries_the_projects_tags_when_asked(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    await store.add(make_message(clock, tags=("Work",)))
    await store.add(make_message(clock, tags=("later",), project="other"))
    await store.add(make_message(clock))
    # The page holds the newest message only (untagged): the tags are the project's.
    part = store.page("default", None, 0, 1, with_tags=True)
    assert part.tags == ("Work",)
    assert [m.tags for m in part.messages] == [()]
    assert store.page("default", None, 0, 1).tags is None
    assert store.page("other", None, 0, 0, with_tags=True).tags == ("later",)


async def test_a_tag_is_spelled_as_its_newest_row(store: SqlMessageStore, clock: FakeClock) -> None:
    """The writers give all rows of a tag one spelling; rows that differ (written by hand) are
    read by the tag's newest row, which the (project, tag_lc, created_us, seq) index finds at
    once (PostgreSQL read the table from its start until a row of the tag came)."""
    from sqlalchemy import update

    from postroom.storage.schema import message_tags

    older = make_message(clock, tags=("Deploy",))
    newer = make_message(clock, tags=("Deploy",))
    for m in (older, newer):
        await store.add(m)
    with store._write.begin() as conn:
        conn.execute(
            update(message_tags).where(message_tags.c.message_id == newer.id).values(tag="DEPLOY")
        )
    assert store.tags("default") == ["DEPLOY"]
    assert store.page("default", None, 0, 1, with_tags=True).tags == ("DEPLOY",)
    # A message written now takes that spelling too (the batch writer's tag_spellings).
    latest = make_message(clock, tags=("deploy",))
    await store.add(latest)
    assert store.get("default", latest.id).tags == ("DEPLOY",)


def test_the_spelling_lookup_reads_the_same_whatever_the_tag_size(tmp_path: Path) -> None:
    """The batch writer looks up each tag's spelling for every batch: that must not read the
    tag's rows (a min() over them made a writer that tags every message slow down with each
    one stored). Measured in SQLite's virtual machine steps, not in time."""
    from postroom.storage.batch import BatchWriter, prepare, tag_spellings
    from postroom.storage.engine import writer_engine

    clock = FakeClock()
    url = f"sqlite:///{tmp_path}/tags.db"
    asyncio.run(open_store(url, clock, writer_process=False).close())
    engine = writer_engine(url)
    writer = BatchWriter(engine)

    def steps() -> int:
        count = [0]

        def tick() -> int:
            count[0] += 1
            return 0

        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert isinstance(raw, sqlite3.Connection)
            raw.set_progress_handler(tick, 1)
            try:
                assert tag_spellings(conn, "default", ["ci"]) == {"ci": "CI"}
            finally:
                raw.set_progress_handler(None, 1)
        return count[0]

    try:
        measured = []
        stored = 0
        for total in (10, 3_000):
            while stored < total:
                batch = [make_message(clock, tags=("CI",)) for _ in range(min(500, total - stored))]
                assert not any(writer.write([prepare(m) for m in batch]))
                stored += len(batch)
            measured.append(steps())
        assert measured[1] <= measured[0] * 1.5, measured
    finally:
        engine.dispose()
