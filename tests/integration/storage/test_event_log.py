"""The durable event log on SQLite and PostgreSQL: a live message's `send` events are written
with it, every queue report writes its event in the report's transaction (and none when the
report changes nothing), with the attempt and the message's new status; queries filter and
page, and one project never sees another's."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, StorageError
from postroom.core.events import EventQuery
from postroom.core.ids import new_id
from postroom.core.types import Attempt, Envelope, NewMessage
from postroom.pipeline.complete import complete_message
from postroom.pipeline.deliveries import deliveries_for
from postroom.storage import SqlMessageStore, open_store, resolve_target
from postroom.storage.events import events

LEASE = timedelta(minutes=5)


def live(
    clock: FakeClock, to: Sequence[str] = ("a@example.net",), project: str = "acme"
) -> NewMessage:
    message = make_message(clock, to=to, project=project, status="queued")
    envelope = dataclasses.replace(message.envelope, rcpt_params=tuple({} for _ in to))
    return dataclasses.replace(message, envelope=envelope, deliveries=deliveries_for(envelope))


@pytest.fixture(params=[False, True], ids=["writer-thread", "writer-process"])
async def store(
    target: str, clock: FakeClock, request: pytest.FixtureRequest
) -> AsyncIterator[SqlMessageStore]:
    opened = open_store(target, clock, writer_process=request.param, complete=complete_message)
    try:
        yield opened
    finally:
        await opened.close()


def kinds(store: SqlMessageStore, project: str, **query: object) -> list[tuple[str, str | None]]:
    page = store.events.query(project, EventQuery(**query))  # type: ignore[arg-type]
    return [(e.type, e.recipient) for e in page.events]


async def test_send_events_are_written_with_the_message(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    message = live(clock, to=("a@example.net", "B@Example.org"))
    await store.add(message)
    await store.add(make_message(clock))  # a captured message: no events
    page = store.events.query("acme", EventQuery())
    assert [(e.type, e.message_id, e.recipient) for e in page.events] == [
        ("send", message.id, "a@example.net"),
        ("send", message.id, "B@Example.org"),
    ]
    assert page.events[0].time == message.created
    assert page.events[0].detail == {"sender": message.envelope.mail_from}
    assert store.events.query("default", EventQuery()).events == ()


async def test_reports_write_their_events_only_when_they_change_the_entry(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    message = live(clock, to=("ok@example.net", "gone@example.net", "late@example.net"))
    await store.add(message)
    queue = store.queue
    ok, gone, late = queue.claim("w1", clock.now(), LEASE, 10)
    reply = {"code": 250, "text": "Queued as X"}
    assert queue.complete(ok.id, "w1", clock.now(), reply)
    assert not queue.complete(ok.id, "w1", clock.now(), reply)  # already reported: no event
    assert not queue.fail(gone.id, "intruder", clock.now(), "550", {"code": 550})  # not its lease
    assert queue.fail(gone.id, "w1", clock.now(), "550 5.1.1", {"code": 550, "hard": True})
    clock.advance(10)
    deferred_at = clock.now()
    assert queue.defer(late.id, "w1", clock.now() + timedelta(minutes=1), "451", {"code": 451})
    clock.advance(120)
    (late,) = queue.claim("w2", clock.now(), LEASE, 10)
    assert queue.fail(late.id, "w2", clock.now(), "5.4.7 expired", {"code": 550}, expired=True)
    found = store.events.query("acme", EventQuery(types=("delivery", "bounce", "deferred")))
    assert [(e.type, e.recipient, e.detail) for e in found.events] == [
        ("delivery", "ok@example.net", reply),
        ("bounce", "gone@example.net", {"code": 550, "hard": True}),
        ("deferred", "late@example.net", {"code": 451}),
    ]
    assert found.events[2].time == deferred_at  # the store's clock
    assert kinds(store, "acme", types=("expired",)) == [("expired", "late@example.net")]
    released = live(clock)
    await store.add(released)
    (entry,) = queue.claim("w3", clock.now(), LEASE, 10)
    assert queue.release(entry.id, "w3")  # untried: no event
    assert kinds(store, "acme", message_id=released.id) == [("send", "a@example.net")]


async def test_queries_filter_and_page(store: SqlMessageStore, clock: FakeClock) -> None:
    first = live(clock, to=("a@example.net", "b@example.net"))
    await store.add(first)
    start = clock.now()
    clock.advance(60)
    second = live(clock, to=("A@EXAMPLE.NET",))
    await store.add(second)
    events_ = store.events
    assert kinds(store, "acme", recipient="a@Example.net") == [
        ("send", "a@example.net"),
        ("send", "A@EXAMPLE.NET"),
    ]
    assert kinds(store, "acme", message_id=second.id) == [("send", "A@EXAMPLE.NET")]
    assert kinds(store, "acme", since=start + timedelta(seconds=1)) == [("send", "A@EXAMPLE.NET")]
    assert len(kinds(store, "acme", until=start + timedelta(seconds=1))) == 2
    assert kinds(store, "acme", types=("delivery",)) == []
    page = events_.query("acme", EventQuery(limit=2))
    assert len(page.events) == 2 and page.next == page.events[-1].id
    rest = events_.query("acme", EventQuery(limit=2, after=page.next))
    assert [e.message_id for e in rest.events] == [second.id] and rest.next is None
    for bad in (EventQuery(limit=0), EventQuery(limit=1001)):
        with pytest.raises(InvalidInput) as info:
            events_.query("acme", bad)
        assert info.value.field == "limit"
    with pytest.raises(InvalidInput) as info:
        events_.query("acme", EventQuery(types=("delivered",)))  # type: ignore[arg-type]
    assert info.value.field == "type"


async def test_another_projects_events_are_never_reached(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    theirs = live(clock, to=("secret@example.net",), project="other")
    await store.add(theirs)
    for query in (
        EventQuery(),
        EventQuery(message_id=theirs.id),
        EventQuery(recipient="secret@example.net"),
    ):
        assert store.events.query("acme", query).events == ()
    assert store.events.for_message("acme", theirs.id) == []
    assert [e.type for e in store.events.for_message("other", theirs.id)] == ["send"]


async def test_a_failed_report_writes_no_event(
    store: SqlMessageStore, clock: FakeClock, target: str
) -> None:
    """The event and the state change are one transaction: when the event cannot be written,
    the entry keeps its state (and stays leased, to be retried by its worker or taken over)."""
    message = live(clock)
    await store.add(message)
    (entry,) = store.queue.claim("w1", clock.now(), LEASE, 10)
    with pytest.raises((StorageError, TypeError, ValueError)):
        store.queue.complete(entry.id, "w1", clock.now(), {"unserialisable": object()})
    (after,) = store.queue.entries(message.id)
    assert after.pending and after.attempts == 0 and after.lease_owner == "w1"
    engine = create_engine(resolve_target(target).url)
    try:
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(events)).scalar_one()
    finally:
        engine.dispose()
    assert count == 1  # the send event only


def attempt(clock: FakeClock, code: int = 250, mx: str = "mx.example.net") -> Attempt:
    return Attempt(
        started=clock.now(),
        duration=0.25,
        code=code,
        enhanced=f"{code // 100}.0.0",
        reply=f"{code}-first line\n{code} second line",
        mx_host=mx,
        ip="192.0.2.1",
        port=25,
        local_address="192.0.2.9:40000",
        tls_version="TLSv1.3",
        tls_cipher="TLS_AES_256_GCM_SHA384",
        earlier=("dead.example.net[192.0.2.2]: 451 4.4.1 Connection failed",),
    )


def status(store: SqlMessageStore, message: NewMessage) -> str:
    return store.get(message.project, message.id).status


async def test_attempts_are_stored_and_the_message_status_follows_its_recipients(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    message = live(clock, to=("ok@example.net", "gone@example.net", "late@example.net"))
    await store.add(message)
    queue = store.queue
    assert status(store, message) == "queued"
    ok, gone, late = queue.claim("w", clock.now(), LEASE, 10)
    tried = attempt(clock, 451)
    queue.defer(late.id, "w", clock.now() + timedelta(minutes=1), "451", {}, attempt=tried)
    assert status(store, message) == "queued"  # deferred, nothing finished
    queue.complete(ok.id, "w", clock.now(), {}, attempt=attempt(clock))
    assert status(store, message) == "delivering"
    queue.fail(gone.id, "w", clock.now(), "550", {}, attempt=attempt(clock, 550))
    assert status(store, message) == "delivering"
    clock.advance(120)
    (late,) = queue.claim("w", clock.now(), LEASE, 10)
    queue.complete(late.id, "w", clock.now(), {}, attempt=attempt(clock))
    assert status(store, message) == "partially_bounced"
    records = queue.attempts("acme", message.id)
    assert [(r.recipient, r.outcome, r.attempt.code) for r in records] == [
        ("late@example.net", "deferred", 451),
        ("ok@example.net", "delivery", 250),
        ("gone@example.net", "bounce", 550),
        ("late@example.net", "delivery", 250),
    ]
    assert records[0].attempt == tried and records[0].entry_id == late.id
    assert queue.attempts("other", message.id) == []  # another project's message: nothing
    bounced = live(clock, to=("x@example.net",))
    delivered = live(clock, to=("y@example.net",))
    await store.add(bounced)
    await store.add(delivered)
    x, y = queue.claim("w", clock.now(), LEASE, 10)
    queue.fail(x.id, "w", clock.now(), "550", {})
    queue.complete(y.id, "w", clock.now(), {})
    assert (status(store, bounced), status(store, delivered)) == ("bounced", "delivered")
    # A finished message deleted takes its attempts along.
    assert store.delete("acme", [message.id], None) == [message.id]
    assert queue.attempts("acme", message.id) == []


async def test_concurrent_reports_of_one_message_agree_on_its_status(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    """Workers finishing recipients of one message at the same moment (threads, each its own
    connection) leave the status every recipient's result says: none misses another's."""
    batch = [live(clock, to=tuple(f"r{i}@example.net" for i in range(4))) for _ in range(15)]
    for message in batch:
        await store.add(message)
    queue = store.queue
    entries = queue.claim("w", clock.now(), LEASE, 100)
    start = threading.Barrier(len(entries) // 15)

    def report(position: int) -> None:
        mine = [e for e in entries if e.recipient == f"r{position}@example.net"]
        start.wait(10)
        for entry in mine:
            if position == 0:
                queue.fail(entry.id, "w", clock.now(), "550", {})
            else:
                queue.complete(entry.id, "w", clock.now(), {})

    threads = [threading.Thread(target=report, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert {status(store, m) for m in batch} == {"partially_bounced"}


async def test_a_failure_writes_its_notice_in_the_same_transaction(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    """`fail(notice=...)` stores the notice (message, bytes, tags, queue entry, send event)
    with the failure; a report that changes nothing writes no notice."""
    message = live(clock, to=("gone@example.net",))
    await store.add(message)
    (entry,) = store.queue.claim("w", clock.now(), LEASE, 10)
    raw = (
        b"From: MAILER-DAEMON@out.test\r\nTo: app@example.com\r\nSubject: Undelivered\r\n\r\nx\r\n"
    )
    envelope = Envelope("", ("app@example.com",), {}, ({},))
    notice = complete_message(
        NewMessage(
            id=new_id(clock.now()),
            project="acme",
            created=clock.now(),
            raw=raw,
            envelope=envelope,
            summary=None,
            tags=("bounce-notice",),
            status="queued",
            deliveries=deliveries_for(envelope),
        )
    )
    assert not store.queue.fail(entry.id, "intruder", clock.now(), "550", {}, notice=notice)
    assert store.list("acme", None, 0, 10).total == 1
    assert store.queue.fail(entry.id, "w", clock.now(), "550", {}, notice=notice)
    stored = store.get("acme", notice.id)
    assert stored.envelope.mail_from == "" and "bounce-notice" in stored.tags
    assert store.raw("acme", notice.id) == raw
    (queued,) = store.queue.entries(notice.id)
    assert queued.recipient == "app@example.com" and queued.pending
    assert [e.type for e in store.events.for_message("acme", notice.id)] == ["send"]
    # A notice that cannot be written undoes the failure it came with.
    other = live(clock, to=("x@example.net",))
    await store.add(other)
    (second,) = [
        e for e in store.queue.claim("w", clock.now(), LEASE, 10) if e.message_id == other.id
    ]
    with pytest.raises(StorageError):
        store.queue.fail(second.id, "w", clock.now(), "550", {}, notice=notice)  # same id again
    (after,) = store.queue.entries(other.id)
    assert after.pending and after.attempts == 0
