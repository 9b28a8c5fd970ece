"""Shaping runs on the injected clock, checked at scripted receiving servers on loopback: a
site that answers 421 4.7.0 "try again later" is suspended, and its mail is postponed — given
back untried, due when the suspension ends, with no attempt counted and no event — instead of
being waited for inside the claimed batch, so the delivery loop goes on claiming and other
sites' mail goes at once; a site's message rate and connection rate let mail go as the fake
clock moves (short waits sat out in place, longer ones postponed); a 421 greeting from one MX
host does not keep the delivery from the site's next host.

No test sleeps a shaping wait out: each moves the fake clock. Real time is only waited for
loopback I/O and database threads, in short polls bounded by a timeout, as is each test (a
shaping wait on real time would hang it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from postroom.core.clock import FakeClock
from postroom.core.events import EventQuery
from postroom.core.types import DELIVERED, QUEUED, QueueEntry
from postroom.delivery.due import DueSchedule
from postroom.delivery.loop import DeliveryLoop
from postroom.delivery.shaping import Shaper, parse_rules
from postroom.delivery.worker import DeliveryWorker
from postroom.storage import SqlMessageStore
from tests.dnszone import DnsZone

from .scripted import ScriptedServer
from .test_connection_reuse import shared_mx
from .test_worker import clock, dns_zone, queue_message, states, store, worker

__all__ = ["clock", "dns_zone", "store"]

pytestmark = pytest.mark.timeout(60)

SUSPEND = 600.0
PUSH_BACK = "421 4.7.0 mx.scripted.test Try again later, closing connection"
SUSPENDING = f"[default]\nsuspend_seconds = {SUSPEND:g}\n"


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Let the worker run (loopback I/O, database threads) until `check` holds; the fake clock
    is not moved."""
    async with asyncio.timeout(seconds):
        while not check():
            await asyncio.sleep(0.01)


async def still(check: Callable[[], bool]) -> None:
    """`check` holds, and still does after the worker had some real time to act."""
    assert check()
    await asyncio.sleep(0.2)
    assert check()


def shaped(
    store: SqlMessageStore,
    zone: DnsZone,
    clock: FakeClock,
    port: int,
    rules: str,
    **settings: object,
) -> DeliveryWorker:
    delivery = worker(store, zone, clock, port, tls="none", **settings)
    delivery._shaper = Shaper(parse_rules(rules))
    return delivery


def delivered(server: ScriptedServer) -> list[str]:
    return sorted(r for t in server.transactions for r in t.recipients)


def entry(store: SqlMessageStore, message_id: str) -> QueueEntry:
    (found,) = store.queue.entries(message_id)
    return found


def recorded(store: SqlMessageStore, message_id: str) -> tuple[list[str], int]:
    """The message's event types and how many attempts are recorded for it."""
    page = store.events.query("acme", EventQuery(message_id=message_id))
    return [e.type for e in page.events], len(store.queue.attempts("acme", message_id))


def suspension_end(delivery: DeliveryWorker, clock: FakeClock, domain: str) -> datetime:
    site = delivery.sites_of([domain])[domain]
    assert site.suspended_for > 0 and "421 4.7.0" in site.reason
    return clock.now() + timedelta(seconds=site.suspended_for)


async def test_a_421_suspends_the_site_and_its_mail_is_postponed_until_the_suspension_ends(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    shared_mx(dns_zone, "example.net", "example.org")  # two domains, one site
    async with ScriptedServer(rcpt_replies=(PUSH_BACK,)) as server:
        delivery = shaped(store, dns_zone, clock, server.port, SUSPENDING)
        first = await queue_message(store, clock, "a@example.net")
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 1
        status, attempts, error = states(store, first)["a@example.net"]
        assert (status, attempts) == (QUEUED, 1) and "421 4.7.0" in error
        assert delivery._shaper is not None
        (site,) = delivery._shaper.status(clock.monotonic())
        assert site.suspended_for == SUSPEND and "421 4.7.0" in site.reason
        ends = suspension_end(delivery, clock, "example.net")
        assert len(server.connections) == 1 and server.transactions == []
        before = recorded(store, first)

        # The other domain of the site, due now, and the first recipient's retry (1 min
        # ± 15 %) are claimed by the next pass, which postpones both to the suspension's end
        # at once: nothing goes to the site, no attempt is counted, no event is written.
        second = await queue_message(store, clock, "b@example.org")
        queued = recorded(store, second)
        clock.advance(120)
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 2
        assert clock.sleepers == 0  # the pass waited for nothing
        assert len(server.connections) == 1
        for message_id, attempts in ((first, 1), (second, 0)):
            held = entry(store, message_id)
            assert (held.status, held.attempts, held.lease_owner) == (QUEUED, attempts, None)
            assert held.next_attempt == ends
        assert recorded(store, first) == before and recorded(store, second) == queued
        assert states(store, first)["a@example.net"][2] == error  # the last real error kept

        clock.advance((ends - clock.now()).total_seconds() - 1)  # one second short of its end
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 0
        clock.advance(1)  # the suspension is over: delivered
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 2
        assert delivered(server) == ["a@example.net", "b@example.org"]
        assert states(store, first)["a@example.net"][:2] == (DELIVERED, 2)
        assert states(store, second)["b@example.org"][:2] == (DELIVERED, 1)
        assert recorded(store, second)[1] == 1  # the one attempt that delivered it
        (site,) = delivery._shaper.status(clock.monotonic())
        assert site.suspended_for == 0 and site.reason == ""
        await delivery.close()


async def test_the_loop_goes_on_claiming_other_sites_while_one_is_suspended(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    dns_zone.add_mx("a.test", 10, "mx.a.test")
    dns_zone.add_a("mx.a.test", "127.0.0.1")
    dns_zone.add_mx("b.test", 10, "mx.b.test")
    dns_zone.add_a("mx.b.test", "127.0.0.2")
    rules = SUSPENDING + "connections = 1\n"
    async with (
        ScriptedServer(rcpt_replies=(PUSH_BACK,)) as site_a,
        ScriptedServer(host="127.0.0.2", port=site_a.port) as site_b,
    ):
        delivery = shaped(store, dns_zone, clock, site_a.port, rules)
        schedule = DueSchedule(clock)
        unsubscribe = store.due.subscribe(schedule.push)
        loop = DeliveryLoop(delivery, schedule, store.queue.due_times, clock, poll_interval=3600)
        a1 = await queue_message(store, clock, "a1@a.test")
        a2 = await queue_message(store, clock, "a2@a.test")
        b1 = await queue_message(store, clock, "b1@b.test")
        running = asyncio.ensure_future(loop.run())
        try:
            # One batch: one of A's recipients is pushed back (421), which suspends A; the
            # other, waiting for A's one connection, is postponed untried; B's is delivered.
            def a_settled() -> bool:
                return sorted(entry(store, m).attempts for m in (a1, a2)) == [0, 1] and all(
                    entry(store, m).lease_owner is None for m in (a1, a2)
                )

            await until(lambda: delivered(site_b) == ["b1@b.test"] and a_settled())
            ends = suspension_end(delivery, clock, "a.test")
            pushed, held = (a1, a2) if entry(store, a1).attempts == 1 else (a2, a1)
            assert entry(store, held).next_attempt == ends
            assert recorded(store, held)[1] == 0  # no attempt row for the postponement
            pushed_recorded = recorded(store, pushed)
            assert pushed_recorded[1] == 1 and pushed_recorded[0].count("deferred") == 1

            # Queued while A is suspended: B's goes at once (the loop claims on), A's is
            # postponed untried.
            a3 = await queue_message(store, clock, "a3@a.test")
            b2 = await queue_message(store, clock, "b2@b.test")
            await until(
                lambda: (
                    "b2@b.test" in delivered(site_b)
                    and entry(store, a3).next_attempt == ends
                    and entry(store, a3).lease_owner is None
                )
            )
            # The pushed-back recipient's retry (1 min ± 15 %) comes while A is suspended:
            # claimed and postponed, not attempted; B's mail queued after it still goes.
            clock.advance(120)
            await until(
                lambda: (
                    entry(store, pushed).next_attempt == ends
                    and entry(store, pushed).lease_owner is None
                )
            )
            b3 = await queue_message(store, clock, "b3@b.test")
            await until(lambda: "b3@b.test" in delivered(site_b))
            assert len(site_a.connections) == 1 and site_a.transactions == []
            assert [entry(store, m).attempts for m in (pushed, held, a3)] == [1, 0, 0]
            assert recorded(store, pushed) == pushed_recorded
            assert recorded(store, held)[1] == recorded(store, a3)[1] == 0

            clock.advance((ends - clock.now()).total_seconds() - 1)
            await still(lambda: len(site_a.connections) == 1)
            clock.advance(1)  # the suspension is over: A's mail goes
            await until(lambda: delivered(site_a) == ["a1@a.test", "a2@a.test", "a3@a.test"])
            await until(
                lambda: all(entry(store, m).status == DELIVERED for m in (a1, a2, a3, b1, b2, b3))
            )
            assert [entry(store, m).attempts for m in (pushed, held, a3)] == [2, 1, 1]
            assert [recorded(store, m)[1] for m in (pushed, held, a3)] == [2, 1, 1]
            assert delivered(site_b) == ["b1@b.test", "b2@b.test", "b3@b.test"]
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            unsubscribe()
            await delivery.close()


async def test_two_workers_on_one_database_deliver_each_recipient_once_around_a_suspension(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    dns_zone.add_mx("a.test", 10, "mx.a.test")
    dns_zone.add_a("mx.a.test", "127.0.0.1")
    dns_zone.add_mx("b.test", 10, "mx.b.test")
    dns_zone.add_a("mx.b.test", "127.0.0.2")
    async with (
        ScriptedServer(rcpt_replies=(PUSH_BACK,)) as site_a,
        ScriptedServer(host="127.0.0.2", port=site_a.port) as site_b,
    ):
        # Two processes' workers (each its own shaper) sharing the queue, small batches.
        workers = [
            shaped(store, dns_zone, clock, site_a.port, SUSPENDING, batch=3) for _ in range(2)
        ]
        workers[0].owner, workers[1].owner = "w1", "w2"
        ids: dict[str, str] = {}
        for i in range(6):
            for domain in ("a.test", "b.test"):
                address = f"r{i}@{domain}"
                ids[address] = await queue_message(store, clock, address)
        for _ in range(6):  # rounds: both drain, then the clock passes any suspension
            async with asyncio.timeout(20):
                await asyncio.gather(*(w.drain() for w in workers))
            if all(entry(store, m).status == DELIVERED for m in ids.values()):
                break
            clock.advance(SUSPEND + 1)
        received = Counter(
            r for s in (site_a, site_b) for t in s.transactions for r in t.recipients
        )
        assert received == Counter(list(ids))  # each recipient exactly once
        attempts = {a: entry(store, m).attempts for a, m in ids.items()}
        # One attempt each (the postponements counted none), the pushed-back one two.
        assert sorted(attempts.values()) == [1] * 11 + [2]
        assert {a: recorded(store, m)[1] for a, m in ids.items()} == attempts
        for w in workers:
            await w.close()


async def test_a_short_rate_wait_is_sat_out_in_place_and_a_stop_ends_it(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    shared_mx(dns_zone, "example.net")
    rules = '[default]\nmessage_rate = "1/s"\nburst = 1\nconnections = 1\n'
    async with ScriptedServer() as server:
        delivery = shaped(store, dns_zone, clock, server.port, rules)
        ids = [await queue_message(store, clock, f"r{i}@example.net") for i in range(3)]
        running = asyncio.ensure_future(delivery.run_once())
        # One message now, the next after 1 s of the fake clock: waited for in the batch.
        await until(lambda: len(server.transactions) == 1 and clock.sleepers == 1)
        assert clock.wakeups == [clock.monotonic() + 1]
        clock.advance(1)
        await until(lambda: len(server.transactions) == 2 and clock.sleepers == 1)
        # The stop's own timeout is far longer than the test's: the wait ends on the stop,
        # and the third recipient is given back untried, due at once.
        async with asyncio.timeout(20):
            await delivery.stop(timeout=300)
            assert await running == 3
        assert len(server.transactions) == 2 and clock.sleepers == 0
        left = [entry(store, m) for m in ids if entry(store, m).status == QUEUED]
        assert [(e.attempts, e.lease_owner) for e in left] == [(0, None)]
        assert left[0].next_attempt <= clock.now()
        await delivery.close()


async def test_a_message_rate_postpones_what_it_does_not_let_go_soon(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    shared_mx(dns_zone, "example.net")
    rules = '[default]\nmessage_rate = "2/m"\nburst = 1\nconnections = 1\n'
    async with ScriptedServer() as server:
        delivery = shaped(store, dns_zone, clock, server.port, rules)
        ids = [await queue_message(store, clock, f"r{i}@example.net") for i in range(3)]
        later = clock.now() + timedelta(seconds=30)

        def waiting() -> list[QueueEntry]:
            return [entry(store, m) for m in ids if entry(store, m).status == QUEUED]

        # One message now; the others are given back, due in 30 s, untried: the pass ends.
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 3
        assert len(server.transactions) == 1 and clock.sleepers == 0
        assert [(e.attempts, e.next_attempt) for e in waiting()] == [(0, later)] * 2
        clock.advance(29)
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 0
        clock.advance(1)
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 2
        assert len(server.transactions) == 2
        assert [(e.attempts, e.next_attempt) for e in waiting()] == [
            (0, later + timedelta(seconds=30))
        ]
        clock.advance(30)
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 1
        assert delivered(server) == ["r0@example.net", "r1@example.net", "r2@example.net"]
        assert {(s[0], s[1]) for i in ids for s in states(store, i).values()} == {(DELIVERED, 1)}
        await delivery.close()


async def test_a_connection_rate_postpones_what_it_does_not_let_go_soon(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    shared_mx(dns_zone, "example.net")
    rules = '[default]\nconnection_rate = "1/m"\nburst = 1\nmessages_per_connection = 1\n'
    async with ScriptedServer() as server:
        delivery = shaped(store, dns_zone, clock, server.port, rules)
        ids = [await queue_message(store, clock, f"r{i}@example.net") for i in range(2)]
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 2
        assert len(server.connections) == 1 and clock.sleepers == 0
        (held,) = [entry(store, m) for m in ids if entry(store, m).status == QUEUED]
        assert (held.attempts, held.next_attempt) == (0, clock.now() + timedelta(seconds=60))
        clock.advance(59)
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 0
        clock.advance(1)
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 1
        assert len(server.connections) == 2 and len(server.transactions) == 2
        assert {(s[0], s[1]) for i in ids for s in states(store, i).values()} == {(DELIVERED, 1)}
        await delivery.close()


async def test_a_421_greeting_does_not_keep_the_delivery_from_the_next_mx_host(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    dns_zone.add_mx("example.net", 10, "mx1.example.net")
    dns_zone.add_mx("example.net", 20, "mx2.example.net")
    dns_zone.add_a("mx1.example.net", "127.0.0.1")
    dns_zone.add_a("mx2.example.net", "127.0.0.2")
    greeting = "421 4.7.0 mx1.example.net Too many connections, try again later"
    async with (
        ScriptedServer(greeting=greeting) as first,
        ScriptedServer(host="127.0.0.2", port=first.port) as second,
    ):
        delivery = shaped(store, dns_zone, clock, first.port, SUSPENDING)
        message_id = await queue_message(store, clock, "a@example.net")
        # The refused greeting suspends the site, but this delivery goes on to the next host
        # at once (it does not wait for the suspension it just began).
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 1
        assert len(first.connections) == 1 and delivered(second) == ["a@example.net"]
        assert states(store, message_id)["a@example.net"][:2] == (DELIVERED, 1)
        ends = suspension_end(delivery, clock, "example.net")
        # The next delivery to the site waits for the suspension's end (postponed).
        later = await queue_message(store, clock, "b@example.net")
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 1
        assert entry(store, later).next_attempt == ends and entry(store, later).attempts == 0
        assert len(first.connections) + len(second.connections) == 2
        await delivery.close()


async def test_a_recipient_postponed_past_its_queue_lifetime_expires_without_an_attempt(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    shared_mx(dns_zone, "example.net")
    rules = "[default]\nsuspend_seconds = 7200\n"  # longer than the lifetime (3600 s)
    async with ScriptedServer(rcpt_replies=(PUSH_BACK,)) as server:
        delivery = shaped(store, dns_zone, clock, server.port, rules)
        await queue_message(store, clock, "a@example.net")
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 1  # pushed back: the site is suspended
        waiting = await queue_message(store, clock, "b@example.net")
        deadline = entry(store, waiting).created + timedelta(seconds=3600)
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 1
        assert entry(store, waiting).next_attempt == deadline  # never past the lifetime
        clock.advance((deadline - clock.now()).total_seconds())
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 2  # with the first one's retry: both expire
        gone = entry(store, waiting)
        assert gone.status == "failed" and (gone.last_error or "").startswith("5.4.7")
        assert "suspended" in (gone.last_error or "")
        types, attempts = recorded(store, waiting)
        assert types[-1] == "expired" and "deferred" not in types and attempts == 0
        assert len(server.connections) == 1
        await delivery.close()
