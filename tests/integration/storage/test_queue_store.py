"""The QueueStore contract, on SQLite and PostgreSQL: entries are written with their message
(writer thread and writer process), claimed with leases that never overlap and that expire,
reported only by their holder; and deleting a message never cancels its deliveries."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, NotFound, PendingDeliveries, StorageError
from postroom.core.events import EventQuery
from postroom.core.ports import QueueStore
from postroom.core.search import parse_query
from postroom.core.types import (
    DELIVERED,
    FAILED,
    QUEUED,
    Attempt,
    Delivered,
    Delivery,
    NewMessage,
    QueueEntry,
)
from postroom.pipeline.complete import complete_message
from postroom.pipeline.deliveries import deliveries_for
from postroom.storage import SqlMessageStore, open_store, resolve_target
from postroom.storage.queue import queue_entries
from postroom.storage.schema import message_raw, messages

LEASE = timedelta(minutes=5)


def live(
    clock: FakeClock, to: Sequence[str] = ("a@example.net",), subject: str = "Hello"
) -> NewMessage:
    """A live project's message with one delivery per recipient, as the pipeline builds it."""
    message = make_message(clock, to=to, subject=subject, project="acme", status="queued")
    envelope = dataclasses.replace(
        message.envelope,
        mail_params={"RET": "HDRS", "ENVID": "env-1"},
        rcpt_params=tuple({"NOTIFY": "FAILURE,DELAY"} for _ in to),
    )
    return dataclasses.replace(message, envelope=envelope, deliveries=deliveries_for(envelope))


@pytest.fixture
def writer_process() -> bool:
    return False


@pytest.fixture
async def store(
    target: str, clock: FakeClock, writer_process: bool
) -> AsyncIterator[SqlMessageStore]:
    opened = open_store(target, clock, writer_process=writer_process, complete=complete_message)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def queue(store: SqlMessageStore) -> QueueStore:
    return store.queue


def ids(entries: Sequence[QueueEntry]) -> list[int]:
    return [e.id for e in entries]


@pytest.mark.parametrize("writer_process", [False, True], ids=["writer-thread", "writer-process"])
async def test_deliveries_are_written_with_their_message(
    store: SqlMessageStore, queue: QueueStore, clock: FakeClock
) -> None:
    message = live(clock, to=("a@example.net", "jürgen@bücher.example"))
    captured = make_message(clock)
    await store.add(message)
    await store.add(captured)
    entries = queue.entries(message.id)
    assert [e.delivery for e in entries] == [
        Delivery("a@example.net", "example.net", "FAILURE,DELAY", None, "HDRS", "env-1"),
        Delivery(
            "jürgen@bücher.example", "xn--bcher-kva.example", "FAILURE,DELAY", None, "HDRS", "env-1"
        ),
    ]
    for entry in entries:
        assert (entry.message_id, entry.project, entry.status) == (message.id, "acme", QUEUED)
        assert entry.pending and entry.attempts == 0 and entry.last_error is None
        assert entry.next_attempt == entry.created == message.created
        assert entry.lease_owner is None and entry.lease_expires is None
    assert queue.get(entries[1].id) == entries[1]
    assert queue.entries(captured.id) == []
    assert queue.pending_count(message.id) == 2
    # A big message goes to the writer unparsed; its deliveries travel with it.
    big = live(clock, to=("big@example.net",))
    await store.add(dataclasses.replace(big, summary=None))
    assert [e.delivery for e in queue.entries(big.id)] == list(big.deliveries)


@pytest.mark.parametrize("writer_process", [False, True], ids=["writer-thread", "writer-process"])
async def test_a_message_that_is_not_committed_leaves_no_entries(
    store: SqlMessageStore, queue: QueueStore, clock: FakeClock
) -> None:
    message = live(clock)
    await store.add(message)
    again = dataclasses.replace(message, deliveries=deliveries_for(message.envelope) * 2)
    with pytest.raises(StorageError):
        await store.add(again)  # the same id: the whole message fails, entries and all
    assert len(queue.entries(message.id)) == 1


async def test_get_of_an_unknown_entry_is_not_found(queue: QueueStore) -> None:
    with pytest.raises(NotFound):
        queue.get(987654)


async def test_claim_leases_due_entries_oldest_first(
    store: SqlMessageStore, queue: QueueStore, clock: FakeClock
) -> None:
    first = live(clock, to=("a@example.net", "b@example.net"))
    second = live(clock, to=("c@example.net",))
    await store.add(first)
    await store.add(second)
    now = clock.now()
    claimed = queue.claim("w1", now, LEASE, 2)
    assert [e.recipient for e in claimed] == ["a@example.net", "b@example.net"]
    assert all(e.lease_owner == "w1" and e.lease_expires == now + LEASE for e in claimed)
    assert queue.get(claimed[0].id).lease_owner == "w1"
    # Leased entries are not due for anyone else; the rest is.
    assert [e.recipient for e in queue.claim("w2", now, LEASE, 10)] == ["c@example.net"]
    assert queue.claim("w3", now, LEASE, 10) == []
    assert queue.claim("w3", now, LEASE, 0) == []
    with pytest.raises(InvalidInput):
        queue.claim("", now, LEASE, 1)
    with pytest.raises(InvalidInput):
        queue.claim("w3", now, timedelta(0), 1)


async def test_an_entry_is_not_due_before_its_time(
    store: SqlMessageStore, queue: QueueStore, clock: FakeClock
) -> None:
    message = live(clock)
    before = clock.now() - timedelta(seconds=5)
    await store.add(message)
    assert queue.claim("w1", before, LEASE, 10) == []  # created after `before`
    [entry] = queue.claim("w1", clock.now(), LEASE, 10)
    retry = clock.now() + timedelta(minutes=15)
    assert queue.defer(entry.id, "w1", retry, "451 4.3.0 try later")
    deferred = queue.get(entry.id)
    assert (deferred.status, deferred.attempts, deferred.last_error) == (
        QUEUED,
        1,
        "451 4.3.0 try later",
    )
    assert deferred.next_attempt == retry and deferred.lease_owner is None
    assert queue.claim("w2", retry - timedelta(microseconds=1), LEASE, 10) == []
    assert ids(queue.claim("w2", retry, LEASE, 10)) == [entry.id]


async def test_an_expired_lease_is_taken_over(
    store: SqlMessageStore, queue: QueueStore, clock: FakeClock
) -> None:
    await store.add(live(clock))
    start = clock.now()
    [entry] = queue.claim("crashed", start, LEASE, 10)
    assert queue.claim("w2", start + LEASE - timedelta(seconds=1), LEASE, 10) == []
    later = start + LEASE
    [taken] = queue.claim("w2", later, LEASE, 10)
    assert taken.id == entry.id and taken.lease_owner == "w2"
    assert taken.lease_expires == later + LEASE
    # The first worker lost it: its reports change nothing.
    assert not queue.complete(entry.id, "crashed", later)
    assert not queue.defer(entry.id, "crashed", later, "late")
    assert not queue.release(entry.id, "crashed")
    assert queue.get(entry.id) == taken
    assert queue.complete(entry.id, "w2", later)
    assert queue.get(entry.id).status == DELIVERED


async def test_reports_finish_an_entry_once(
    store: SqlMessageStore, queue: QueueStore, clock: FakeClock
) -> None:
    message = live(clock, to=("ok@example.net", "bad@example.net", "later@example.net"))
    await store.add(message)
    now = clock.now()
    ok, bad, later = queue.claim("w1", now, LEASE, 10)
    assert queue.complete(ok.id, "w1", now)
    assert queue.fail(bad.id, "w1", now, "550 5.1.1 no such user")
    assert queue.release(later.id, "w1")
    # Finished entries take no further report, even from their last holder.
    assert not queue.complete(ok.id, "w1", now)
    assert not queue.fail(ok.id, "w1", now, "x")
    assert not queue.defer(bad.id, "w1", now, "x")
    done, failed, released = queue.entries(message.id)
    assert (done.status, done.attempts, done.last_error, done.lease_owner) == (
        DELIVERED,
        1,
        None,
        None,
    )
    assert (failed.status, failed.attempts, failed.last_error) == (
        FAILED,
        1,
        "550 5.1.1 no such user",
    )
    assert not done.pending and not failed.pending
    # Released untried: no attempt counted, due again at once, for anyone.
    assert (released.status, released.attempts, released.lease_owner) == (QUEUED, 0, None)
    assert ids(queue.claim("w2", now, LEASE, 10)) == [later.id]
    assert queue.pending_count(message.id) == 1
    assert queue.pending("acme", [message.id, "nope"]) == {message.id: ("later@example.net",)}
    assert queue.pending("other-project", [message.id]) == {}


async def test_postpone_gives_entries_back_due_later_without_an_attempt(
    store: SqlMessageStore, queue: QueueStore, clock: FakeClock
) -> None:
    message = live(clock, to=("a@example.net", "b@example.net"))
    await store.add(message)
    now = clock.now()
    first, second = queue.claim("w1", now, LEASE, 10)

    def recorded() -> tuple[list[str], int]:
        page = store.events.query("acme", EventQuery(message_id=message.id))
        return [e.type for e in page.events], len(queue.attempts("acme", message.id))

    before = recorded()
    due: list[object] = []
    store.due.subscribe(due.append)
    until = now + timedelta(seconds=300)
    # Only entries still leased to the caller change; an id given twice changes once.
    assert queue.postpone([first.id, second.id, first.id], "w2", until) == 0
    assert queue.postpone([first.id, second.id, first.id], "w1", until) == 2
    assert due == [until]  # the in-memory schedule hears of the new due time
    assert queue.postpone([first.id], "w1", until) == 0  # no longer leased
    assert queue.postpone([], "w1", until) == 0
    for entry in queue.entries(message.id):
        assert (entry.status, entry.attempts, entry.lease_owner, entry.last_error) == (
            QUEUED,
            0,
            None,
            None,
        )
        assert entry.next_attempt == until
    assert recorded() == before  # no event, no attempt row
    # Not claimable before `until`, by anyone; then due again.
    assert queue.claim("w2", until - timedelta(seconds=1), LEASE, 10) == []
    assert queue.due_times(now, 10) == [until, until]
    assert ids(queue.claim("w2", until, LEASE, 10)) == [first.id, second.id]


async def test_complete_many_records_a_batch_in_one_transaction(
    store: SqlMessageStore, queue: QueueStore, clock: FakeClock
) -> None:
    both = live(clock, to=("a@example.net", "b@example.net"))
    half = live(clock, to=("c@example.net", "d@example.net"))
    await store.add(both)
    await store.add(half)
    now = clock.now()
    a, b, c, d = queue.claim("w1", now, LEASE, 10)
    (other,) = [e for e in (a, b, c, d) if e.recipient == "d@example.net"]
    queue.release(other.id, "w1")
    assert queue.claim("w2", now, LEASE, 10) == [
        dataclasses.replace(other, lease_owner="w2", lease_expires=now + LEASE)
    ]
    attempt = Attempt(now, 0.01, 250, "2.0.0", "250 2.0.0 Ok", "mx.example.net", "192.0.2.1", 25)
    batch = [Delivered(e.id, "w1", now, {"reply": "250 2.0.0 Ok"}, attempt) for e in (a, b, c, d)]
    # d is leased to w2 now: not changed by w1's batch, and the rest still is.
    assert queue.complete_many(batch) == [e.id != other.id for e in (a, b, c, d)]
    assert queue.complete_many([]) == []
    assert {e.status for e in queue.entries(both.id)} == {DELIVERED}
    assert [e.status for e in queue.entries(half.id)] == [DELIVERED, QUEUED]
    record = store.get("acme", both.id)
    partial = store.get("acme", half.id)
    assert (record.status, partial.status) == ("delivered", "delivering")
    events = [(e.type, e.recipient) for e in store.events.for_message("acme", both.id)]
    assert events[-2:] == [("delivery", "a@example.net"), ("delivery", "b@example.net")]
    assert [r.recipient for r in queue.attempts("acme", half.id)] == ["c@example.net"]
    # Reported once: the same batch again changes nothing.
    assert queue.complete_many(batch[:1]) == [False]


def _claim_all(queue: QueueStore, owner: str, clock: FakeClock, out: list[int]) -> None:
    while True:
        claimed = queue.claim(owner, clock.now(), LEASE, 7)
        if not claimed:
            return
        out.extend(e.id for e in claimed)


async def test_two_claimers_never_get_the_same_entry(
    store: SqlMessageStore, queue: QueueStore, clock: FakeClock, target: str
) -> None:
    """Four claimers on two stores (two connection pools, as two processes would have) race
    for 300 entries: each entry is claimed exactly once."""
    for i in range(30):
        await store.add(live(clock, to=tuple(f"r{j}@d{i}.example" for j in range(10))))
    other = open_store(target, clock)
    try:
        results: list[list[int]] = [[] for _ in range(4)]
        queues = [queue, other.queue, queue, other.queue]
        threads = [
            threading.Thread(target=_claim_all, args=(q, f"w{n}", clock, results[n]))
            for n, q in enumerate(queues)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        await other.close()
    claimed = [i for result in results for i in result]
    assert len(claimed) == 300
    assert len(set(claimed)) == 300
    assert sum(1 for result in results if result) >= 2  # they did compete


async def test_deleting_a_message_with_pending_deliveries_is_refused(
    store: SqlMessageStore, queue: QueueStore, clock: FakeClock
) -> None:
    pending = live(clock, to=("a@example.net", "b@example.net"), subject="invoice")
    done = live(clock, subject="invoice")
    plain = make_message(clock, project="acme", subject="invoice")
    for message in (pending, done, plain):
        await store.add(message)
    first, second, entry = queue.claim("w1", clock.now(), LEASE, 10)
    assert queue.release(first.id, "w1") and queue.release(second.id, "w1")
    assert entry.message_id == done.id and queue.complete(entry.id, "w1", clock.now())

    def refused(ids: list[str] | None, query: str | None = None) -> PendingDeliveries:
        parsed = None if query is None else parse_query(query, clock.now())
        with pytest.raises(PendingDeliveries) as caught:
            store.delete("acme", ids, parsed)
        return caught.value

    error = refused([plain.id, pending.id, done.id])
    assert error.pending == {pending.id: ("a@example.net", "b@example.net")}
    assert (error.field, error.deliveries) == ("IDs", 2)
    assert "2 deliveries pending" in str(error) and "a@example.net, b@example.net" in str(error)
    assert refused(None).pending == error.pending and refused(None).field is None
    assert refused(None, "subject:invoice").field == "query"
    assert refused([pending.id], "subject:invoice").pending == error.pending
    # Nothing was deleted: the request is refused whole.
    assert store.list("acme", None, 0, 10).total == 3
    assert len(queue.entries(pending.id)) == 2
    # A query that leaves the pending message out deletes the others, with finished entries.
    assert store.delete("acme", [pending.id], parse_query("subject:other", clock.now())) == []
    assert sorted(store.delete("acme", [plain.id, done.id], None)) == sorted([plain.id, done.id])
    assert queue.entries(done.id) == []
    assert [m.id for m in store.list("acme", None, 0, 10).messages] == [pending.id]
    # Once every recipient is done, the message can go, and its entries with it.
    for entry in queue.claim("w1", clock.now(), LEASE, 10):
        assert queue.fail(entry.id, "w1", clock.now(), "550 5.1.1 unknown")
    assert store.delete("acme", None, None) == [pending.id]
    assert queue.entries(pending.id) == []


async def test_retention_keeps_messages_with_pending_deliveries(
    store: SqlMessageStore, queue: QueueStore, clock: FakeClock
) -> None:
    old_pending = live(clock)
    old_plain = make_message(clock, project="acme")
    clock.advance(3600)
    newer = [make_message(clock, project="acme") for _ in range(3)]
    for message in (old_pending, old_plain, *newer):
        await store.add(message)
    cutoff = clock.now() - timedelta(minutes=30)
    assert store.prune("acme", None, cutoff) == [old_plain.id]
    assert store.prune("acme", 1, None) == [m.id for m in newer[:2]]
    remaining = {m.id for m in store.list("acme", None, 0, 10).messages}
    assert remaining == {old_pending.id, newer[2].id}
    assert queue.pending_count(old_pending.id) == 1


async def test_retention_walks_past_kept_messages(
    store: SqlMessageStore, queue: QueueStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more kept messages than one delete chunk, the older deletable ones still go."""
    monkeypatch.setattr("postroom.storage.store.DELETE_CHUNK", 3)
    kept = [live(clock) for _ in range(7)]
    plain = [make_message(clock, project="acme") for _ in range(4)]
    for message in (*kept, *plain):
        await store.add(message)
    assert store.prune("acme", 0, None) == [m.id for m in plain]
    assert store.list("acme", None, 0, 20).total == 7


async def test_the_database_refuses_to_drop_queue_entries_with_their_message(
    store: SqlMessageStore, clock: FakeClock, target: str
) -> None:
    """No ON DELETE CASCADE: whatever deletes a message row, its entries are never lost."""
    message = live(clock)
    await store.add(message)
    engine = create_engine(resolve_target(target).url)
    try:
        with pytest.raises(IntegrityError), engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys = ON")
            conn.execute(delete(message_raw).where(message_raw.c.message_id == message.id))
            conn.execute(delete(messages).where(messages.c.id == message.id))
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(queue_entries)).scalar()
            assert count == 1
    finally:
        engine.dispose()
