"""Operators' queue views and actions on SQLite and PostgreSQL: counts per state and domain,
filters, retry now, hold (never claimed), release, cancel (an event and the message's status
in the same transaction); entries a worker holds are left alone; another project's entries
never match; held entries keep their message from being deleted."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, PendingDeliveries
from postroom.core.events import EventQuery
from postroom.core.types import NewMessage, QueueFilter
from postroom.pipeline.complete import complete_message
from postroom.pipeline.deliveries import deliveries_for
from postroom.storage import SqlMessageStore, open_store

LEASE = timedelta(minutes=5)


def live(clock: FakeClock, to: Sequence[str], project: str = "acme") -> NewMessage:
    message = make_message(clock, to=to, project=project, status="queued")
    envelope = dataclasses.replace(message.envelope, rcpt_params=tuple({} for _ in to))
    return dataclasses.replace(message, envelope=envelope, deliveries=deliveries_for(envelope))


@pytest.fixture
async def store(target: str, clock: FakeClock) -> AsyncIterator[SqlMessageStore]:
    opened = open_store(target, clock, writer_process=False, complete=complete_message)
    try:
        yield opened
    finally:
        await opened.close()


async def test_views_and_actions(store: SqlMessageStore, clock: FakeClock) -> None:
    first = live(clock, ("a@example.net", "b@example.net", "c@slow.example"))
    second = live(clock, ("d@slow.example",))
    theirs = live(clock, ("e@slow.example",), project="other")
    for message in (first, second, theirs):
        await store.add(message)
    queue, admin = store.queue, store.queue_admin
    # A worker tries c@slow.example and defers it; another one holds d@ right now.
    claimed = {e.recipient: e for e in queue.claim("w", clock.now(), LEASE, 10)}
    queue.defer(claimed["c@slow.example"].id, "w", clock.now() + timedelta(hours=1), "451 busy")
    queue.release(claimed["a@example.net"].id, "w")
    queue.release(claimed["b@example.net"].id, "w")
    queue.release(claimed["e@slow.example"].id, "w")
    summary = admin.summary("acme")
    assert summary.states == {
        "queued": 3,
        "deferred": 1,
        "held": 0,
        "delivered": 0,
        "failed": 0,
        "cancelled": 0,
    }
    slow = next(d for d in summary.domains if d.domain == "slow.example")
    assert (slow.queued, slow.held, slow.last_error) == (2, 0, "451 busy")
    assert [d.domain for d in summary.domains] == ["example.net", "slow.example"]
    deferred = admin.find("acme", QueueFilter(state="deferred"))
    assert [e.recipient for e in deferred] == ["c@slow.example"]
    assert [e.recipient for e in admin.find("acme", QueueFilter(domain="SLOW.example"))] == [
        "c@slow.example",
        "d@slow.example",
    ]
    with pytest.raises(InvalidInput) as info:
        admin.find("acme", QueueFilter())
    assert info.value.field == "filter"

    # Retry now: the deferred entry is due at once.
    (retried,) = admin.act("acme", "retry", QueueFilter(state="deferred"), clock.now())
    assert queue.get(retried).next_attempt == clock.now()
    # Hold the whole slow domain: d@ is being delivered (leased), so only c@ is held.
    held = admin.act("acme", "hold", QueueFilter(domain="slow.example"), clock.now())
    assert held == [claimed["c@slow.example"].id]
    assert queue.get(held[0]).status == "held" and queue.get(held[0]).pending
    assert all(e.recipient != "c@slow.example" for e in queue.claim("w2", clock.now(), LEASE, 10))
    with pytest.raises(PendingDeliveries):  # a held recipient is still to deliver
        store.delete("acme", [first.id], None)
    # Release: due now, claimable again.
    clock.advance(600)  # the leases of the claims above have run out
    assert admin.act("acme", "release", QueueFilter(entry_ids=tuple(held)), clock.now()) == held
    assert queue.get(held[0]).status == "queued"
    # Another project's entries never match, whatever the filter says.
    other_id = claimed["e@slow.example"].id
    assert admin.act("acme", "cancel", QueueFilter(entry_ids=(other_id,)), clock.now()) == []
    assert admin.find("acme", QueueFilter(message_ids=(theirs.id,))) == []
    # Cancel every pending entry of the first message: events and its status, at once.
    cancelled = admin.act("acme", "cancel", QueueFilter(message_ids=(first.id,)), clock.now())
    assert len(cancelled) == 3
    assert store.get("acme", first.id).status == "cancelled"
    events = store.events.query("acme", EventQuery(types=("cancelled",))).events
    assert sorted(e.recipient or "" for e in events) == [
        "a@example.net",
        "b@example.net",
        "c@slow.example",
    ]
    assert admin.act("acme", "cancel", QueueFilter(message_ids=(first.id,)), clock.now()) == []
    assert store.delete("acme", [first.id], None) == [first.id]  # nothing pending now
    assert admin.summary("other").states["queued"] == 1
    everything = admin.act("acme", "hold", QueueFilter(everything=True), clock.now())
    assert [queue.get(i).recipient for i in everything] == ["d@slow.example"]
