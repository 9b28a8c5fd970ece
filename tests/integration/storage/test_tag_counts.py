"""Tag counts for the inbox's sidebar: one grouped query, per project, tags merged without
regard to case (as `tags()`), with totals and unread, on both backends."""

from __future__ import annotations

from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
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
