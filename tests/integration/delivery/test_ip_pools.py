"""IP pools at the delivery worker: a project's connections bind to an address of its pool
(127.0.0.2, 127.0.0.3 on loopback) and greet with that address's EHLO name; the receiving
server (scripted, on 127.0.0.1) sees which; another project's delivery never rides on the
pool's connections."""

from __future__ import annotations

import dataclasses

from postroom.core.clock import FakeClock
from postroom.core.types import DELIVERED, Envelope
from postroom.delivery.pools import ProjectPools, parse_ip_pools
from postroom.pipeline.deliveries import deliveries_for
from postroom.storage import SqlMessageStore
from tests.dnszone import DnsZone
from tests.integration.storage.factory import make_message

from .scripted import ScriptedServer
from .test_worker import RAW, clock, dns_zone, states, store, worker

__all__ = ["clock", "dns_zone", "store"]

POOLS = "dedicated=127.0.0.2/out2.postroom.test 127.0.0.3/out3.postroom.test; spare=127.0.0.4"


async def queue(store: SqlMessageStore, clock: FakeClock, project: str, recipient: str) -> str:
    base = make_message(clock, to=(recipient,), project=project, status="queued", raw=RAW)
    envelope = Envelope("app@example.com", (recipient,), {}, ({},))
    message = dataclasses.replace(base, envelope=envelope, deliveries=deliveries_for(envelope))
    await store.add(message)
    return message.id


async def test_connections_bind_to_the_projects_pool(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    chosen = {"acme": "dedicated"}
    pools = ProjectPools(parse_ip_pools(POOLS, "out.postroom.test"), chosen.get, clock)
    async with ScriptedServer() as server:
        delivery = worker(store, dns_zone, clock, server.port, tls="none")
        delivery._pools = pools
        first = await queue(store, clock, "acme", "a@example.net")
        await delivery.run_once()
        # Another project without a pool: the system's address and the server's own name,
        # on a connection of its own (the pool's kept connection is not for it).
        other = await queue(store, clock, "other", "b@example.net")
        await delivery.run_once()
        await delivery.close()
        # The next acme delivery takes the pool's next address in turn.
        second = await queue(store, clock, "acme", "c@example.net")
        await delivery.run_once()
        await delivery.close()
        seen = [(c.peer, c.ehlo) for c in server.connections]
        assert seen == [
            ("127.0.0.2", "out2.postroom.test"),
            ("127.0.0.1", "out.postroom.test"),
            ("127.0.0.3", "out3.postroom.test"),
        ]
        assert [t.recipients for t in server.transactions] == [
            ["a@example.net"],
            ["b@example.net"],
            ["c@example.net"],
        ]
    for project, message_id, recipient, source in (
        ("acme", first, "a@example.net", "127.0.0.2"),
        ("other", other, "b@example.net", "127.0.0.1"),
        ("acme", second, "c@example.net", "127.0.0.3"),
    ):
        assert states(store, message_id)[recipient][0] == DELIVERED
        (attempt,) = store.queue.attempts(project, message_id)
        assert attempt.attempt.local_address.startswith(f"{source}:"), attempt


async def test_a_kept_pool_connection_is_reused_by_its_project(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone
) -> None:
    dns_zone.add_a("example.net", "127.0.0.1")
    pools = ProjectPools(
        parse_ip_pools(POOLS, "out.postroom.test"), lambda p: None, clock, default="dedicated"
    )
    async with ScriptedServer() as server:
        delivery = worker(store, dns_zone, clock, server.port, tls="none")
        delivery._pools = pools
        for recipient in ("a@example.net", "b@example.net", "c@example.net"):
            await queue(store, clock, "acme", recipient)
            await delivery.run_once()
        await delivery.close()
        # The default pool; the kept connection from 127.0.0.2 carried all three.
        assert [(c.peer, c.count("MAIL")) for c in server.connections] == [("127.0.0.2", 3)]
