"""The suppression list on SQLite and PostgreSQL: one entry per scope and address (any case),
re-adding replaces, the project's entry or the account's suppresses, expired entries do not,
search and paging stay inside one scope, bulk import and export round-trip."""

from __future__ import annotations

from datetime import timedelta

import pytest

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, NotFound
from postroom.core.suppression import ACCOUNT, Suppression, SuppressionQuery
from postroom.storage import SqlMessageStore


def entry(clock: FakeClock, address: str, scope: str = "acme", **more: object) -> Suppression:
    return Suppression(scope, address, created=clock.now(), **more)  # type: ignore[arg-type]


def test_add_get_replace_remove(store: SqlMessageStore, clock: FakeClock) -> None:
    sup = store.suppressions
    sup.add(entry(clock, "Gone@Example.net", reason="bounce", event_id=7, detail="userunknown"))
    found = sup.get("acme", "gone@example.NET")
    assert (found.address, found.reason, found.event_id, found.detail) == (
        "Gone@Example.net",
        "bounce",
        7,
        "userunknown",
    )
    sup.add(entry(clock, "GONE@example.net", reason="manual"))
    page = sup.query("acme", SuppressionQuery())
    assert [(e.address, e.reason) for e in page.entries] == [("GONE@example.net", "manual")]
    with pytest.raises(NotFound):
        sup.get("other", "gone@example.net")  # another project's list is another list
    sup.remove("acme", "gone@EXAMPLE.net")
    with pytest.raises(NotFound):
        sup.remove("acme", "gone@example.net")


def test_what_suppresses_a_project(store: SqlMessageStore, clock: FakeClock) -> None:
    sup = store.suppressions
    sup.add(entry(clock, "mine@example.net", reason="complaint"))
    sup.add(entry(clock, "all@example.net", scope=ACCOUNT, reason="manual"))
    sup.add(entry(clock, "theirs@example.net", scope="other", reason="bounce"))
    sup.add(
        entry(clock, "old@example.net", reason="bounce", expires=clock.now() + timedelta(days=1))
    )
    asked = [
        "MINE@example.net",
        "all@example.net",
        "theirs@example.net",
        "old@example.net",
        "x@y.z",
    ]
    found = sup.suppressed("acme", asked, clock.now())
    assert sorted(found) == ["all@example.net", "mine@example.net", "old@example.net"]
    assert found["all@example.net"].scope == ACCOUNT
    later = clock.now() + timedelta(days=2)
    assert "old@example.net" not in sup.suppressed("acme", asked, later)
    assert sorted(sup.suppressed("other", asked, clock.now())) == [
        "all@example.net",
        "theirs@example.net",
    ]
    assert sup.remove_expired(later) == 1


def test_search_page_and_export(store: SqlMessageStore, clock: FakeClock) -> None:
    sup = store.suppressions
    count = sup.add_many(
        entry(clock, f"user{i:03}@example.net", reason="unsubscribe") for i in range(250)
    )
    assert count == 250
    sup.add(entry(clock, "50%_off@shop.example", reason="manual"))
    sup.add(entry(clock, "user999@example.net", scope="other", reason="manual"))
    first = sup.query("acme", SuppressionQuery(limit=100))
    assert first.entries[0].address == "50%_off@shop.example"
    assert len(first.entries) == 100 and first.next == "user098@example.net"
    second = sup.query("acme", SuppressionQuery(limit=100, after=first.next))
    assert second.entries[0].address == "user099@example.net"
    third = sup.query("acme", SuppressionQuery(limit=100, after=second.next))
    assert len(third.entries) == 51 and third.next is None
    assert [e.address for e in sup.query("acme", SuppressionQuery(search="%_")).entries] == [
        "50%_off@shop.example"
    ]  # LIKE wildcards are taken literally
    assert len(sup.query("acme", SuppressionQuery(search="USER1", limit=1000)).entries) == 100
    assert sup.query("acme", SuppressionQuery(reason="manual")).entries[0].address.startswith("50")
    exported = list(sup.export("acme", chunk=64))
    assert len(exported) == 251 and "user999@example.net" not in {e.address for e in exported}
    with pytest.raises(InvalidInput):
        sup.query("acme", SuppressionQuery(limit=0))


def test_a_big_import_adds_and_replaces(store: SqlMessageStore, clock: FakeClock) -> None:
    sup = store.suppressions
    sup.add(entry(clock, "user0007@example.net", reason="manual", detail="before"))
    sup.add(entry(clock, "user0008@example.net", scope="other", reason="manual"))
    count = sup.add_many(
        entry(clock, f"User{i:04}@example.net", reason="bounce", detail=f"row {i}")
        for i in range(5000)  # past one multi-row statement (PostgreSQL: the COPY path)
    )
    assert count == 5000
    replaced = sup.get("acme", "user0007@example.net")
    assert (replaced.address, replaced.reason, replaced.detail) == (
        "User0007@example.net",
        "bounce",
        "row 7",
    )
    assert sup.get("other", "user0008@example.net").reason == "manual"  # another scope
    assert len(list(sup.export("acme"))) == 5000
