"""The worker's results in the event log: a real receiving server on loopback, a real DNS server,
the real store on SQLite and PostgreSQL; time is a fake clock. Each recipient's outcome is an event with the reply, the
remote MTA, hard or soft and the reason; each attempt a record of the connection it used."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from postroom.bounces.parse import parse_report
from postroom.bounces.verp import Verp, resolve
from postroom.core.clock import FakeClock
from postroom.core.errors import Refusal, RefusalKind
from postroom.core.events import EventQuery
from postroom.core.types import Envelope
from postroom.delivery.notices import Notices
from postroom.delivery.return_path import ReturnPaths
from postroom.delivery.schedule import RetrySchedule
from postroom.pipeline.complete import complete_message
from postroom.pipeline.deliveries import deliveries_for
from postroom.storage import SqlMessageStore, open_store
from tests.dnszone import DnsZone, dns_zone
from tests.integration.delivery.test_worker import (
    RAW,
    StartReceiver,
    _unused_port,
    clock,
    queue_message,
    start_receiver,
    worker,
)
from tests.integration.storage.conftest import backend, postgres_database, target
from tests.integration.storage.factory import make_message

__all__ = ["backend", "clock", "dns_zone", "postgres_database", "start_receiver", "target"]


@pytest.fixture
async def store(target: str, clock: FakeClock) -> AsyncIterator[SqlMessageStore]:
    """The real store on SQLite and on PostgreSQL: the worker's reports (events, attempts,
    status, notices) run on both."""
    opened = open_store(target, clock, writer_process=False, complete=complete_message)
    try:
        yield opened
    finally:
        await opened.close()


def history(store: SqlMessageStore, message_id: str) -> list[tuple[str, str | None]]:
    return [(e.type, e.recipient) for e in store.events.for_message("acme", message_id)]


async def test_each_outcome_is_an_event_with_the_reply_and_the_remote_mta(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    receiver, port = await start_receiver()
    receiver.refuse["gone@example.net"] = Refusal(RefusalKind.UNKNOWN_RECIPIENT, "No such user")
    receiver.refuse["full@example.net"] = Refusal(RefusalKind.TEMPORARY_FAILURE, "Mailbox full")
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    message_id = await queue_message(
        store, clock, "ok@example.net", "gone@example.net", "full@example.net"
    )
    delivery = worker(store, dns_zone, clock, port)
    await delivery.run_once()
    events = {e.recipient: e for e in store.events.for_message("acme", message_id)[3:]}
    ok, gone, full = (events[f"{n}@example.net"] for n in ("ok", "gone", "full"))
    assert ok.type == "delivery" and ok.time == clock.now()
    assert ok.detail["code"] == 250 and ok.detail["remote_mta"] == "mx.example.net"
    assert ok.detail["remote_ip"] == "127.0.0.1" and ok.detail["local"] is False
    assert gone.type == "bounce"
    assert (gone.detail["code"], gone.detail["enhanced"]) == (550, "5.1.1")
    assert "No such user" in gone.detail["text"]
    assert gone.detail["hard"] is True and gone.detail["reason"] == "userunknown"
    assert full.type == "deferred" and full.detail["code"] == 451
    assert full.detail["hard"] is False and "next_attempt" in full.detail
    clock.advance(3700)  # past the queue lifetime (1 h in these tests)
    await delivery.run_once()
    expired = store.events.query("acme", EventQuery(types=("expired",))).events
    assert [(e.recipient, e.detail["enhanced"], e.detail["last_code"]) for e in expired] == [
        ("full@example.net", "5.4.7", 451)
    ]
    assert history(store, message_id) == [
        ("send", "ok@example.net"),
        ("send", "gone@example.net"),
        ("send", "full@example.net"),
        ("delivery", "ok@example.net"),
        ("bounce", "gone@example.net"),
        ("deferred", "full@example.net"),
        ("expired", "full@example.net"),
    ]


async def test_local_failures_say_so(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    dns_zone.add_mx("nullmx.test", 0, ".")
    message_id = await queue_message(store, clock, "a@nullmx.test")
    await worker(store, dns_zone, clock, 25).run_once()
    (_, bounce) = store.events.for_message("acme", message_id)
    assert bounce.type == "bounce" and bounce.detail["enhanced"] == "5.1.10"
    assert bounce.detail["local"] is True and bounce.detail["remote_mta"] == ""


async def test_every_attempt_is_recorded_with_the_connection_it_used(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    port = _unused_port("127.0.0.1")
    receiver, _ = await start_receiver(host="127.0.0.1", port=port)
    receiver.refuse["full@example.net"] = Refusal(RefusalKind.TEMPORARY_FAILURE, "Mailbox full")
    dns_zone.add_mx("example.net", 10, "dead.example.net")
    dns_zone.add_mx("example.net", 20, "live.example.net")
    dns_zone.add_a("dead.example.net", "127.0.0.9")  # nothing listens there
    dns_zone.add_a("live.example.net", "127.0.0.1")
    message_id = await queue_message(store, clock, "ok@example.net", "full@example.net")
    delivery = worker(store, dns_zone, clock, port)
    await delivery.run_once()
    assert store.get("acme", message_id).status == "delivering"
    clock.advance(90)
    await delivery.run_once()
    records = store.queue.attempts("acme", message_id)
    assert [(r.recipient, r.outcome) for r in records] == [
        ("ok@example.net", "delivery"),
        ("full@example.net", "deferred"),
        ("full@example.net", "deferred"),
    ]
    first = records[0].attempt
    assert (first.mx_host, first.ip, first.port) == ("live.example.net", "127.0.0.1", port)
    assert first.local_address.startswith("127.0.0.1:")
    assert first.tls_version.startswith("TLSv1.") and first.tls_cipher
    assert first.code == 250 and first.reply.startswith("250 ")
    assert first.started == records[1].attempt.started
    (dead,) = first.earlier
    assert dead.startswith("dead.example.net[127.0.0.9]: 451 4.4.1")
    deferred = records[2].attempt
    assert deferred.code == 451 and "Mailbox full" in deferred.reply
    assert deferred.started == records[0].attempt.started + timedelta(seconds=90)
    assert len(receiver.messages) == 1


async def test_verp_gives_each_recipient_a_return_path_that_maps_back(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    receiver, port = await start_receiver()
    dns_zone.add_a("example.net", "127.0.0.1")
    verp = Verp(bytes(range(32)))

    async def domains_of(project: str) -> frozenset[str]:
        return frozenset({"example.com"}) if project == "acme" else frozenset()

    delivery = worker(store, dns_zone, clock, port)
    delivery._return_paths = ReturnPaths(verp, "", domains_of)
    message_id = await queue_message(store, clock, "a@example.net", "b@example.net")
    unverified = await queue_message(store, clock, "c@example.net", sender="x@elsewhere.example")
    null = await queue_message(store, clock, "d@example.net", sender="")
    await delivery.run_once()
    senders = {m.envelope.recipients: m.envelope.mail_from for m in receiver.messages}
    a, b = senders[("a@example.net",)], senders[("b@example.net",)]  # one transaction each
    assert a != b and a.endswith("@rp.example.com") and a.startswith("bounces+")
    found = resolve(a.upper(), verp, store.queue)
    assert found is not None
    assert (found.project, found.message_id, found.recipient) == (
        "acme",
        message_id,
        "a@example.net",
    )
    assert resolve(b, verp, store.queue).recipient == "b@example.net"  # type: ignore[union-attr]
    assert senders[("c@example.net",)] == "x@elsewhere.example"  # not a domain of the project
    assert senders[("d@example.net",)] == ""  # a bounce is never given a return path
    assert {e.status for i in (message_id, unverified, null) for e in store.queue.entries(i)} == {
        "delivered"
    }
    # One bounce domain for every project, when configured.
    delivery._return_paths = ReturnPaths(verp, "bounces.postroom.example", domains_of)
    await queue_message(store, clock, "e@example.net", sender="x@elsewhere.example")
    await delivery.run_once()
    assert receiver.messages[-1].envelope.mail_from.endswith("@bounces.postroom.example")
    assert resolve("bounces+aaaaaaaaaaaa@rp.example.com", verp, store.queue) is None


async def test_a_permanent_failure_sends_the_sender_a_notice(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    """The notice is a new message of the project, queued from the null sender to the sender
    in the failure's transaction, then delivered like any other; NOTIFY=NEVER, the null sender
    and a project with notices off get none; RET=FULL returns the whole message."""
    receiver, port = await start_receiver()
    receiver.refuse["gone@example.net"] = Refusal(RefusalKind.UNKNOWN_RECIPIENT, "No such user")
    receiver.refuse["never@example.net"] = Refusal(RefusalKind.UNKNOWN_RECIPIENT, "No such user")
    receiver.refuse["quiet@example.net"] = Refusal(RefusalKind.UNKNOWN_RECIPIENT, "No such user")
    dns_zone.add_a("example.net", "127.0.0.1")
    dns_zone.add_a("example.com", "127.0.0.1")  # the sender's domain: notices go there
    quiet_projects = {"hushed"}

    async def enabled(project: str) -> bool:
        return project not in quiet_projects

    delivery = worker(store, dns_zone, clock, port)
    delivery._notices = Notices("out.postroom.test", complete_message, enabled)
    failed = await queue_message(store, clock, "gone@example.net", "ok@example.net")
    never = await queue_params(store, clock, "never@example.net", notify="NEVER")
    full = await queue_params(store, clock, "gone@example.net", ret="FULL", envid="E-1")
    null = await queue_message(store, clock, "gone@example.net", sender="")
    hushed = await queue_params(store, clock, "quiet@example.net", project="hushed")
    await delivery.run_once()
    notices = [m for m in store.list("acme", None, 0, 50).messages if "bounce-notice" in m.tags]
    assert len(notices) == 2  # the first message's and the RET=FULL one's
    assert store.list("hushed", None, 0, 50).total == 1  # its own message only
    for notice in notices:
        assert notice.envelope.mail_from == "" and notice.envelope.recipients == (
            "app@example.com",
        )
        assert notice.status == "queued"
        (entry,) = store.queue.entries(notice.id)
        assert entry.recipient == "app@example.com" and entry.pending
        raw = store.raw("acme", notice.id)
        report = parse_report(raw)
        assert report is not None and report.recipients[0].address == "gone@example.net"
        assert report.recipients[0].status == "5.1.1"
    bodies = {n.id: store.raw("acme", n.id) for n in notices}
    with_body = [r for r in bodies.values() if b"Original-Envelope-Id: E-1" in r]
    assert len(with_body) == 1 and b"message/rfc822" in with_body[0]
    assert b".a line starting with a dot" in with_body[0]
    assert all(s == "bounced" for s in (store.get("acme", i).status for i in (never, full, null)))
    # The notices are delivered like any message, from the null sender.
    await delivery.run_once()
    delivered = [m for m in receiver.messages if m.envelope.mail_from == ""]
    assert [m.envelope.recipients for m in delivered] == [("app@example.com",)] * 2
    assert failed and hushed


async def test_an_expired_recipient_gets_a_notice_too(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    receiver, port = await start_receiver()
    receiver.refuse["full@example.net"] = Refusal(RefusalKind.TEMPORARY_FAILURE, "Mailbox full")
    dns_zone.add_a("example.net", "127.0.0.1")
    delivery = worker(store, dns_zone, clock, port)
    delivery._notices = Notices("out.postroom.test", complete_message)
    await queue_message(store, clock, "full@example.net")
    await delivery.run_once()
    assert not [m for m in store.list("acme", None, 0, 50).messages if "bounce-notice" in m.tags]
    clock.advance(3700)
    await delivery.run_once()
    (notice,) = [m for m in store.list("acme", None, 0, 50).messages if "bounce-notice" in m.tags]
    report = parse_report(store.raw("acme", notice.id))
    assert report is not None and report.recipients[0].status == "5.4.7"
    assert b"Mailbox full" in store.raw("acme", notice.id)


async def queue_params(
    store: SqlMessageStore,
    clock: FakeClock,
    recipient: str,
    notify: str | None = None,
    ret: str | None = None,
    envid: str | None = None,
    project: str = "acme",
) -> str:
    base = make_message(clock, to=(recipient,), project=project, status="queued", raw=RAW)
    mail = {k: v for k, v in (("RET", ret), ("ENVID", envid)) if v}
    rcpt = {"NOTIFY": notify} if notify else {}
    envelope = Envelope("app@example.com", (recipient,), mail, (rcpt,))
    message = dataclasses.replace(base, envelope=envelope, deliveries=deliveries_for(envelope))
    await store.add(message)
    return message.id


async def test_one_delay_notice_after_four_hours(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    receiver, port = await start_receiver()
    for name in ("full", "quiet"):
        receiver.refuse[f"{name}@example.net"] = Refusal(
            RefusalKind.TEMPORARY_FAILURE, "Mailbox full"
        )
    dns_zone.add_a("example.net", "127.0.0.1")
    delivery = worker(store, dns_zone, clock, port)
    delivery._schedule = RetrySchedule(lifetime=5 * 86400)
    delivery._notices = Notices("out.postroom.test", complete_message)
    message_id = await queue_params(store, clock, "full@example.net")
    await queue_params(store, clock, "quiet@example.net", notify="FAILURE")

    def notices() -> list[bytes]:
        found = store.list("acme", None, 0, 50).messages
        return [store.raw("acme", m.id) for m in found if "bounce-notice" in m.tags]

    for _ in range(6):  # retries within the first 4 hours: no notice
        await delivery.run_once()
        clock.advance(1800)
    assert notices() == []
    clock.advance(3 * 3600)
    await delivery.run_once()
    (delayed,) = notices()
    report = parse_report(delayed)
    assert report is not None and report.recipients[0].action == "delayed"
    assert report.recipients[0].address == "full@example.net"
    (entry,) = store.queue.entries(message_id)
    assert entry.delay_notified and entry.pending
    clock.advance(86400)
    await delivery.run_once()
    assert len(notices()) == 1  # one notice of delay, not one per retry
