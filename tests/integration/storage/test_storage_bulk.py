"""Read flags, deletion and retention: by ids, by query, all; chunked bulk work."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, NotFound
from postroom.core.search import SearchQuery, Term
from postroom.core.types import NewMessage
from postroom.storage import SqlMessageStore
from postroom.storage import store as store_module

UNKNOWN = "01JZZZZZZZZZZZZZZZZZZZZZZZ"


async def add_all(store: SqlMessageStore, messages: list[NewMessage]) -> list[str]:
    for m in messages:
        await store.add(m)
    return [m.id for m in messages]


def q(field: str, text: str = "", negated: bool = False) -> SearchQuery:
    return SearchQuery((Term(field, text=text, negated=negated),))  # type: ignore[arg-type]


def ids_of(store: SqlMessageStore, project: str = "default") -> set[str]:
    return {m.id for m in store.list(project, None, 0, 10_000).messages}


async def test_set_read_by_ids(store: SqlMessageStore, clock: FakeClock) -> None:
    ids = await add_all(store, [make_message(clock) for _ in range(4)])
    assert store.set_read("default", [ids[2], ids[0], UNKNOWN], None, True) == [ids[2], ids[0]]
    # Already read: nothing changes, nothing returned.
    assert store.set_read("default", [ids[0], ids[1]], None, True) == [ids[1]]
    assert [store.get("default", i).read for i in ids] == [True, True, True, False]
    assert store.set_read("default", [ids[0]], None, False) == [ids[0]]
    assert store.list("default", None, 0, 0).unread == 2
    assert store.set_read("default", [], None, True) == []


async def test_set_read_by_query_and_all(store: SqlMessageStore, clock: FakeClock) -> None:
    ids = await add_all(
        store, [make_message(clock, subject="news" if i < 3 else "other") for i in range(5)]
    )
    other = await add_all(store, [make_message(clock, project="other")])
    assert sorted(store.set_read("default", None, q("subject", "news"), True)) == sorted(ids[:3])
    assert store.list("default", None, 0, 0).unread == 2
    assert sorted(store.set_read("default", None, None, True)) == sorted(ids[3:])
    assert store.list("default", None, 0, 0).unread == 0
    assert store.get("other", other[0]).read is False
    assert sorted(store.set_read("default", None, q("is-read"), False)) == sorted(ids)
    # ids and query together: the ids that match the query.
    assert store.set_read("default", ids[:4], q("subject", "other"), True) == [ids[3]]


async def test_delete_by_ids(store: SqlMessageStore, clock: FakeClock) -> None:
    ids = await add_all(store, [make_message(clock, tags=("t",)) for _ in range(4)])
    other = await add_all(store, [make_message(clock, project="other")])
    assert store.delete("default", [ids[1], UNKNOWN, other[0], ids[3]], None) == [ids[1], ids[3]]
    assert ids_of(store) == {ids[0], ids[2]}
    assert ids_of(store, "other") == set(other)
    for gone in (ids[1], ids[3]):
        with pytest.raises(NotFound):
            store.raw("default", gone)
        with pytest.raises(NotFound):
            store.get("default", gone)
    assert store.delete("default", [ids[1]], None) == []


async def test_delete_by_query_and_all(
    store: SqlMessageStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "DELETE_CHUNK", 3)  # exercise the chunk loop
    ids = await add_all(
        store, [make_message(clock, subject="x" if i % 2 else "y", tags=("t",)) for i in range(11)]
    )
    other = await add_all(store, [make_message(clock, project="other", tags=("t",))])
    removed = store.delete("default", None, q("subject", "x"))
    assert sorted(removed) == sorted(ids[1::2])
    assert ids_of(store) == set(ids[0::2])
    assert sorted(store.delete("default", None, None)) == sorted(ids[0::2])
    assert ids_of(store) == set()
    assert store.tags("default") == []
    assert ids_of(store, "other") == set(other)
    assert store.tags("other") == ["t"]
    assert store.delete("default", None, None) == []


async def test_prune_by_count(
    store: SqlMessageStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "DELETE_CHUNK", 4)
    ids = await add_all(store, [make_message(clock) for _ in range(10)])
    other = await add_all(store, [make_message(clock, project="other")])
    assert store.prune("default", None, None) == []
    assert store.prune("default", 20, None) == []
    pruned = store.prune("default", 3, None)
    assert sorted(pruned) == sorted(ids[:7])
    assert ids_of(store) == set(ids[7:])
    assert store.prune("default", 3, None) == []
    assert sorted(store.prune("default", 0, None)) == sorted(ids[7:])
    assert ids_of(store, "other") == set(other)
    with pytest.raises(InvalidInput):
        store.prune("default", -1, None)


async def test_prune_by_age(store: SqlMessageStore, clock: FakeClock) -> None:
    start = clock.now()
    ids = await add_all(store, [make_message(clock, step=60) for _ in range(10)])  # one a minute
    cutoff = start + timedelta(minutes=4)  # messages 0-3 are older, 4 is exactly at the cutoff
    assert sorted(store.prune("default", None, cutoff)) == sorted(ids[:4])
    assert ids_of(store) == set(ids[4:])
    # Both limits: age first, then count.
    pruned = store.prune("default", 2, start + timedelta(minutes=6))
    assert sorted(pruned) == sorted(ids[4:8])
    assert ids_of(store) == set(ids[8:])


async def test_prune_with_equal_timestamps(store: SqlMessageStore, clock: FakeClock) -> None:
    same = clock.now()
    ids = await add_all(store, [make_message(clock, created=same) for _ in range(6)])
    assert sorted(store.prune("default", 2, None)) == sorted(ids[:4])
    assert ids_of(store) == set(ids[4:])
