"""Shaping runs on the injected clock, checked at a scripted receiving server on loopback: a
site that answers 421 4.7.0 "try again later" is suspended, nothing is attempted to it while
the fake clock has not passed the suspension, and delivery resumes once the clock is moved past
it; a site's message rate and connection rate let mail go as the fake clock moves.

No test sleeps a shaping wait out: each moves the fake clock. Real time is only waited for
loopback I/O and database threads, in short polls bounded by a timeout, as is each test (a
shaping wait on real time would hang it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from postroom.core.clock import FakeClock
from postroom.core.types import DELIVERED, QUEUED
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
    store: SqlMessageStore, zone: DnsZone, clock: FakeClock, port: int, rules: str
) -> DeliveryWorker:
    delivery = worker(store, zone, clock, port, tls="none")
    delivery._shaper = Shaper(parse_rules(rules))
    return delivery


def delivered(server: ScriptedServer) -> list[str]:
    return sorted(r for t in server.transactions for r in t.recipients)


async def test_a_421_suspends_the_site_until_the_fake_clock_passes_the_suspension(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    shared_mx(dns_zone, "example.net", "example.org")  # two domains, one site
    async with ScriptedServer(rcpt_replies=(PUSH_BACK,)) as server:
        delivery = shaped(
            store, dns_zone, clock, server.port, f"[default]\nsuspend_seconds = {SUSPEND:g}\n"
        )
        first = await queue_message(store, clock, "a@example.net")
        async with asyncio.timeout(20):
            assert await delivery.run_once() == 1
        status, attempts, error = states(store, first)["a@example.net"]
        assert (status, attempts) == (QUEUED, 1) and "421 4.7.0" in error
        assert delivery._shaper is not None
        (site,) = delivery._shaper.status(clock.monotonic())
        assert site.suspended_for == SUSPEND and "421 4.7.0" in site.reason
        ends = clock.monotonic() + SUSPEND
        assert len(server.connections) == 1 and server.transactions == []

        # The other domain of the site, due now, and the first recipient's retry (1 min
        # ± 15 %) are claimed by the next pass, but nothing goes to the suspended site.
        second = await queue_message(store, clock, "b@example.org")
        clock.advance(120)
        running = asyncio.ensure_future(delivery.run_once())
        await until(lambda: clock.sleepers == 2)  # both wait on the clock
        await still(lambda: len(server.connections) == 1 and not running.done())
        clock.advance(ends - 1 - clock.monotonic())  # one second short of its end
        await still(lambda: len(server.connections) == 1 and not running.done())
        assert clock.sleepers == 2

        clock.advance(1)  # the suspension is over: delivery resumes
        async with asyncio.timeout(20):
            assert await running == 2
        assert delivered(server) == ["a@example.net", "b@example.org"]
        assert states(store, first)["a@example.net"][:2] == (DELIVERED, 2)
        assert states(store, second)["b@example.org"][:2] == (DELIVERED, 1)
        (site,) = delivery._shaper.status(clock.monotonic())
        assert site.suspended_for == 0 and site.reason == ""
        await delivery.close()


async def test_a_stop_ends_a_wait_for_a_suspended_site_without_moving_the_clock(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    shared_mx(dns_zone, "example.net")
    async with ScriptedServer(rcpt_replies=(PUSH_BACK,)) as server:
        delivery = shaped(
            store, dns_zone, clock, server.port, f"[default]\nsuspend_seconds = {SUSPEND:g}\n"
        )
        await queue_message(store, clock, "a@example.net")
        async with asyncio.timeout(20):
            await delivery.run_once()
        waiting = await queue_message(store, clock, "b@example.net")
        running = asyncio.ensure_future(delivery.run_once())
        await until(lambda: clock.sleepers == 1)
        # The stop's own timeout is far longer than the test's: the wait ends on the stop.
        async with asyncio.timeout(20):
            assert await delivery.stop(timeout=300) == 1  # given back untried
            assert await running == 1
        assert states(store, waiting)["b@example.net"][:2] == (QUEUED, 0)
        assert len(server.connections) == 1 and clock.sleepers == 0
        await delivery.close()


async def test_a_message_rate_lets_messages_go_as_the_fake_clock_moves(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    shared_mx(dns_zone, "example.net")
    rules = '[default]\nmessage_rate = "2/m"\nburst = 1\nconnections = 1\n'
    async with ScriptedServer() as server:
        delivery = shaped(store, dns_zone, clock, server.port, rules)
        ids = [await queue_message(store, clock, f"r{i}@example.net") for i in range(3)]
        running = asyncio.ensure_future(delivery.run_once())
        # One message now, then one every 30 s of the fake clock.
        await until(lambda: len(server.transactions) == 1 and clock.sleepers == 1)
        clock.advance(29)
        await still(lambda: len(server.transactions) == 1 and not running.done())
        clock.advance(1)
        await until(lambda: len(server.transactions) == 2 and clock.sleepers == 1)
        clock.advance(29)
        await still(lambda: len(server.transactions) == 2 and not running.done())
        clock.advance(1)
        async with asyncio.timeout(20):
            assert await running == 3
        assert delivered(server) == ["r0@example.net", "r1@example.net", "r2@example.net"]
        assert len(server.connections) == 1  # one connection, paced
        assert {s[0] for i in ids for s in states(store, i).values()} == {DELIVERED}
        await delivery.close()


async def test_a_connection_rate_opens_connections_as_the_fake_clock_moves(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    shared_mx(dns_zone, "example.net")
    rules = '[default]\nconnection_rate = "1/m"\nburst = 1\nmessages_per_connection = 1\n'
    async with ScriptedServer() as server:
        delivery = shaped(store, dns_zone, clock, server.port, rules)
        ids = [await queue_message(store, clock, f"r{i}@example.net") for i in range(2)]
        running = asyncio.ensure_future(delivery.run_once())
        await until(lambda: len(server.transactions) == 1 and clock.sleepers == 1)
        clock.advance(59)
        await still(lambda: len(server.connections) == 1 and not running.done())
        clock.advance(1)
        async with asyncio.timeout(20):
            assert await running == 2
        assert len(server.connections) == 2 and len(server.transactions) == 2
        assert {s[0] for i in ids for s in states(store, i).values()} == {DELIVERED}
        await delivery.close()
