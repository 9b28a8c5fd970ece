"""Connection reuse: several messages to one site over one connection (RSET before each
reuse, at most the site's messages per connection), recipients of one message whose domains
share the next hops in one transaction; checked at a scripted loopback server that records
every connection and transaction."""

from __future__ import annotations

from postroom.core.clock import FakeClock
from postroom.core.types import DELIVERED
from postroom.delivery.shaping import Shaper, parse_rules
from postroom.delivery.worker import HOT_IDLE
from postroom.storage import SqlMessageStore
from tests.dnszone import DnsZone

from .scripted import ScriptedServer
from .test_worker import clock, dns_zone, queue_message, states, store, worker

__all__ = ["clock", "dns_zone", "store"]


def shared_mx(zone: DnsZone, *domains: str) -> None:
    for domain in domains:
        zone.add_mx(domain, 10, "mx.shared.test")
    zone.add_a("mx.shared.test", "127.0.0.1")


async def test_messages_to_one_site_share_connections(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    shared_mx(dns_zone, "example.net", "example.org")
    async with ScriptedServer() as server:
        ids = [await queue_message(store, clock, f"r{i}@example.net") for i in range(5)]
        # One message, two domains served by the same MX: one transaction for both.
        ids.append(await queue_message(store, clock, "x@example.net", "y@example.org"))
        delivery = worker(store, dns_zone, clock, server.port, tls="none")
        delivery._shaper = Shaper(
            parse_rules("[default]\nconnections = 1\nmessages_per_connection = 4\n")
        )
        assert await delivery.run_once() == 7
        assert {s[0] for i in ids for s in states(store, i).values()} == {DELIVERED}
        assert len(server.transactions) == 6
        (both,) = [t for t in server.transactions if len(t.recipients) == 2]
        assert sorted(both.recipients) == ["x@example.net", "y@example.org"]
        # Six messages, at most four per connection, one connection at a time: two.
        first, second = server.connections
        assert (first.count("MAIL"), second.count("MAIL")) == (4, 2)
        # RSET before every reuse of a kept connection; the first carried its limit and
        # was closed with QUIT, the second is still kept.
        assert (first.count("RSET"), second.count("RSET")) == (3, 1)
        assert (first.count("QUIT"), second.count("QUIT")) == (1, 0)
        assert first.count("EHLO") == second.count("EHLO") == 1
        await delivery.close()
        assert second.count("QUIT") == 1


async def test_kept_connection_survives_passes_until_idle_too_long(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    shared_mx(dns_zone, "example.net")
    async with ScriptedServer() as server:
        delivery = worker(store, dns_zone, clock, server.port, tls="none", connection_idle=5.0)
        await queue_message(store, clock, "a@example.net")
        await delivery.run_once()
        clock.advance(2)  # idle less than 5 s: the next pass reuses it
        await queue_message(store, clock, "b@example.net")
        await delivery.run_once()
        assert [c.count("MAIL") for c in server.connections] == [2]
        assert server.connections[0].count("QUIT") == 0
        clock.advance(6)  # idle past the limit: the pass ends by closing it
        await delivery.run_once()
        assert server.connections[0].count("QUIT") == 1
        await queue_message(store, clock, "c@example.net")
        await delivery.run_once()
        assert [c.count("MAIL") for c in server.connections] == [2, 1]
        await delivery.close()


async def test_a_kept_connection_the_server_dropped_is_replaced(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    shared_mx(dns_zone, "example.net")
    async with ScriptedServer(drop_after=1) as server:
        delivery = worker(store, dns_zone, clock, server.port, tls="none")
        first = await queue_message(store, clock, "a@example.net")
        await delivery.run_once()
        second = await queue_message(store, clock, "b@example.net")
        await delivery.run_once()  # RSET on the dropped connection fails: a new one
        await delivery.close()
        assert states(store, first)["a@example.net"][0] == DELIVERED
        assert states(store, second)["b@example.net"][0] == DELIVERED
        assert [t.recipients for t in server.transactions] == [["a@example.net"], ["b@example.net"]]
        assert len(server.connections) == 2


async def test_a_hot_connection_is_reused_without_a_round_trip_and_replaced_if_dead(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    # Reused within HOT_IDLE, the kept connection's RSET goes with the next MAIL; this server
    # answers it 421 and hangs up: nothing was accepted, so the transaction goes on a new
    # connection at once (delivered, one attempt), never deferred.
    shared_mx(dns_zone, "example.net")
    async with ScriptedServer(close_on_rset=True) as server:
        delivery = worker(store, dns_zone, clock, server.port, tls="none")
        first = await queue_message(store, clock, "a@example.net")
        await delivery.run_once()
        clock.advance(HOT_IDLE / 2)
        second = await queue_message(store, clock, "b@example.net")
        assert await delivery.run_once() == 1
        await delivery.close()
        assert states(store, first)["a@example.net"][:2] == (DELIVERED, 1)
        assert states(store, second)["b@example.net"][:2] == (DELIVERED, 1)
        assert [t.connection for t in server.transactions] == [0, 1]
        assert server.connections[0].commands[-1] == "RSET"
        assert [c.count("MAIL") for c in server.connections] == [1, 1]
        assert len(store.queue.attempts("acme", second)) == 1
