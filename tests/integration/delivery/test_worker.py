"""The delivery worker against real receiving servers on loopback, routed through a real DNS
server on 127.0.0.1, with the real SQLite store and queue; time is a fake clock."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from postroom.core.clock import FakeClock
from postroom.core.errors import Refusal, RefusalKind
from postroom.core.types import DELIVERED, FAILED, QUEUED, Envelope, IncomingMessage, SessionInfo
from postroom.delivery.schedule import RetrySchedule
from postroom.delivery.shaping import Shaper, parse_rules
from postroom.delivery.worker import (
    BATCH_LOAD_MAX,
    DeliverySettings,
    DeliveryWorker,
    Relay,
    parse_routes,
)
from postroom.dns.resolver import DnsPythonResolver
from postroom.pipeline.complete import complete_message
from postroom.pipeline.deliveries import deliveries_for
from postroom.smtp.protocol import SessionPolicy
from postroom.smtp.server import Listener, SmtpServer
from postroom.smtp.tls import generate_self_signed, server_context
from postroom.storage import SqlMessageStore, open_store
from postroom.storage.schema import message_raw
from tests.dnszone import DnsZone, dns_zone
from tests.integration.storage.factory import make_message

__all__ = ["dns_zone"]

RAW = (
    b"From: App <app@example.com>\r\nTo: x\r\nSubject: delivery\r\nMessage-ID: <d-1@example.com>\r\n"
    b"\r\n.a line starting with a dot\r\nbody\r\n"
)


@dataclass
class Receiver:
    """A receiving SMTP server (Postroom's own SMTP edge) that records or refuses."""

    refuse: dict[str, Refusal] = field(default_factory=dict)
    messages: list[IncomingMessage] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)
    checks_sender: bool = False
    checks_recipient: bool = True

    async def deliver(self, message: IncomingMessage) -> str:
        self.messages.append(message)
        return f"R{len(self.messages)}"

    async def authenticate(
        self, mechanism: str, username: str, password: str, session: SessionInfo
    ) -> str | None:
        return username if self.users.get(username) == password else None

    def check_sender(self, session: Any, address: str, params: Any) -> Any:
        return None

    def check_recipient(self, session: Any, mail_from: str, address: str, params: Any) -> Any:
        return self.refuse.get(address)

    def session_ended(self, summary: dict[str, Any]) -> None:
        pass

    def refused(self, door: str, reason: str) -> None:
        pass


StartReceiver = Callable[..., Awaitable[tuple[Receiver, int]]]


@pytest.fixture
async def start_receiver(tmp_path: Path) -> AsyncIterator[StartReceiver]:
    servers: list[SmtpServer] = []
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    generate_self_signed(cert, key, "mx.example.test")

    async def start(
        host: str = "127.0.0.1", port: int = 0, tls: bool = True, **policy: Any
    ) -> tuple[Receiver, int]:
        receiver = Receiver()
        values: dict[str, Any] = {
            "hostname": "mx.example.test",
            "starttls_available": tls,
            "auth_without_tls": False,
        }
        values.update(policy)
        listener = Listener(
            door="mx",
            host=host,
            port=port,
            policy=SessionPolicy(**values),
            ssl_context=server_context(cert, key) if tls else None,
        )
        server = SmtpServer(listener, receiver, clock=FakeClock())  # type: ignore[arg-type]
        await server.start()
        servers.append(server)
        return receiver, server.port

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqlMessageStore]:
    opened = open_store(
        str(tmp_path / "data"), clock, writer_process=False, complete=complete_message
    )
    try:
        yield opened
    finally:
        await opened.close()


async def queue_message(
    store: SqlMessageStore,
    clock: FakeClock,
    *recipients: str,
    sender: str = "app@example.com",
    raw: bytes = RAW,
) -> str:
    base = make_message(clock, to=recipients, project="acme", status="queued", raw=raw)
    envelope = Envelope(sender, tuple(recipients), {}, tuple({} for _ in recipients))
    message = dataclasses.replace(base, envelope=envelope, deliveries=deliveries_for(envelope))
    await store.add(message)
    return message.id


def worker(
    store: SqlMessageStore, zone: DnsZone, clock: FakeClock, port: int, **settings: Any
) -> DeliveryWorker:
    values: dict[str, Any] = {
        "helo_name": "out.postroom.test",
        "allow_private": True,
        "mx_port": port,
        "connect_timeout": 2.0,
    }
    values.update(settings)
    return DeliveryWorker(
        store.queue,
        store,
        DnsPythonResolver(zone.nameserver, timeout=1.0),
        clock,
        DeliverySettings(**values),
        rng=random.Random(3),
        schedule=RetrySchedule(lifetime=3600),
    )


def states(store: SqlMessageStore, message_id: str) -> dict[str, tuple[str, int, str]]:
    return {
        e.recipient: (e.status, e.attempts, e.last_error or "")
        for e in store.queue.entries(message_id)
    }


async def test_mx_delivery_with_starttls_byte_exact(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    receiver, port = await start_receiver()
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    message_id = await queue_message(store, clock, "a@example.net", "b@example.net")
    assert await worker(store, dns_zone, clock, port).run_once() == 2
    assert {r: s[0] for r, s in states(store, message_id).items()} == {
        "a@example.net": DELIVERED,
        "b@example.net": DELIVERED,
    }
    (got,) = receiver.messages
    assert got.envelope.recipients == ("a@example.net", "b@example.net")
    assert got.envelope.mail_from == "app@example.com"
    assert got.data == RAW  # one transaction for the domain, byte-identical
    assert got.session.tls is not None and got.session.helo == "out.postroom.test"


async def test_per_recipient_results_retry_and_expiry(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    receiver, port = await start_receiver()
    receiver.refuse["gone@example.net"] = Refusal(RefusalKind.UNKNOWN_RECIPIENT, "No such user")
    receiver.refuse["full@example.net"] = Refusal(RefusalKind.TEMPORARY_FAILURE, "Mailbox full")
    dns_zone.add_a("example.net", "127.0.0.1")  # no MX: the implicit MX
    message_id = await queue_message(
        store, clock, "ok@example.net", "gone@example.net", "full@example.net"
    )
    delivery = worker(store, dns_zone, clock, port)
    await delivery.run_once()
    result = states(store, message_id)
    assert result["ok@example.net"][0] == DELIVERED
    assert (
        result["gone@example.net"][0] == FAILED
        and "550 5.1.1 No such user" in result["gone@example.net"][2]
    )
    assert (
        result["full@example.net"][:2] == (QUEUED, 1)
        and "451 4.3.0 Mailbox full" in result["full@example.net"][2]
    )
    assert await delivery.run_once() == 0  # not due before its retry time
    clock.advance(75)  # first retry after 1 min ± 15 %
    assert await delivery.run_once() == 1
    assert states(store, message_id)["full@example.net"][:2] == (QUEUED, 2)
    clock.advance(3600)  # past the queue lifetime
    await delivery.run_once()
    status, _, error = states(store, message_id)["full@example.net"]
    assert status == FAILED and error.startswith("5.4.7") and "451 4.3.0" in error
    assert [m.envelope.recipients for m in receiver.messages] == [("ok@example.net",)]


class CountingStore:
    """The message store, counting how the worker reads messages."""

    def __init__(self, store: SqlMessageStore) -> None:
        self._store = store
        self.batch_reads: list[int] = []
        self.single_reads: list[str] = []

    def get_many_with_raw(self, keys: Any, max_size: int) -> Any:
        self.batch_reads.append(len(keys))
        return self._store.get_many_with_raw(keys, max_size)

    def get_with_raw(self, project: str, message_id: str) -> Any:
        self.single_reads.append(message_id)
        return self._store.get_with_raw(project, message_id)


async def test_a_batch_loads_its_messages_in_one_read_big_and_corrupt_ones_alone(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    receiver, port = await start_receiver(tls=False)
    dns_zone.add_a("example.net", "127.0.0.1")
    small = [await queue_message(store, clock, f"s{i}@example.net") for i in range(3)]
    big_raw = RAW + (b"y" * 998 + b"\r\n") * (BATCH_LOAD_MAX // 1000 + 1)
    big = await queue_message(store, clock, "big@example.net", raw=big_raw)
    counting = CountingStore(store)
    delivery = worker(store, dns_zone, clock, port)
    delivery._store = counting  # type: ignore[assignment]
    assert await delivery.run_once() == 4
    assert counting.batch_reads == [4]  # one read for the batch's four messages
    assert counting.single_reads == [big]  # the big one was left to be read on its own
    for message_id in [*small, big]:
        assert {s[0] for s in states(store, message_id).values()} == {DELIVERED}
    assert sorted(m.data for m in receiver.messages) == sorted([RAW, RAW, RAW, big_raw])

    # A corrupt message fails the batch read: each is then read on its own, and only the
    # corrupt one fails (temporarily: an internal error, not the receiver's answer).
    good = await queue_message(store, clock, "good@example.net")
    bad = await queue_message(store, clock, "bad@example.net")
    with store._write.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            update(message_raw).where(message_raw.c.message_id == bad).values(data=b"garbage")
        )
    counting.single_reads.clear()
    assert await delivery.run_once() == 2
    assert sorted(counting.single_reads) == sorted([good, bad])
    assert states(store, good)["good@example.net"][0] == DELIVERED
    status, attempts, error = states(store, bad)["bad@example.net"]
    assert (status, attempts) == (QUEUED, 1) and "451 4.3.0" in error
    assert len(receiver.messages) == 5


def _unused_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def test_next_mx_after_a_dead_host(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    port = _unused_port("127.0.0.1")
    receiver, _ = await start_receiver(host="127.0.0.1", port=port)
    dns_zone.add_mx("example.net", 10, "dead.example.net")
    dns_zone.add_mx("example.net", 20, "live.example.net")
    dns_zone.add_a("dead.example.net", "127.0.0.9")  # nothing listens there
    dns_zone.add_a("live.example.net", "127.0.0.1")
    message_id = await queue_message(store, clock, "a@example.net")
    await worker(store, dns_zone, clock, port).run_once()
    assert states(store, message_id)["a@example.net"][0] == DELIVERED
    assert len(receiver.messages) == 1


async def test_routing_failures(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    dns_zone.add_mx("nullmx.test", 0, ".")
    dns_zone.add_mx("down.test", 10, "mx.down.test")
    dns_zone.add_a("mx.down.test", "127.0.0.9")
    null_id = await queue_message(store, clock, "a@nullmx.test")
    down_id = await queue_message(store, clock, "a@down.test")
    await worker(store, dns_zone, clock, _unused_port("127.0.0.1")).run_once()
    public_id = await queue_message(store, clock, "a@inside.test")
    dns_zone.add_a("inside.test", "10.0.0.1")
    await worker(store, dns_zone, clock, 25, allow_private=False).run_once()
    assert states(store, null_id)["a@nullmx.test"][0] == FAILED
    assert "5.1.10" in states(store, null_id)["a@nullmx.test"][2]
    assert states(store, down_id)["a@down.test"][:2] == (QUEUED, 1)  # connection refused: retry
    assert "5.4.4" in states(store, public_id)["a@inside.test"][2]  # private address refused


async def test_smarthost_with_auth_and_required_starttls(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    receiver, port = await start_receiver()
    receiver.users["relay-user"] = "relay-pass"
    relay = Relay.parse(f"smtp://relay-user:relay-pass@127.0.0.1:{port}?verify=no")
    message_id = await queue_message(store, clock, "a@anywhere.example", "b@elsewhere.example")
    await worker(store, dns_zone, clock, 25, smarthost=relay).run_once()
    assert {s[0] for s in states(store, message_id).values()} == {DELIVERED}
    assert all(m.session.auth_user == "relay-user" for m in receiver.messages)
    assert dns_zone.queries == []  # the smarthost needs no DNS
    bad = Relay.parse(f"smtp://relay-user:wrong@127.0.0.1:{port}?verify=no")
    other = await queue_message(store, clock, "c@anywhere.example")
    await worker(store, dns_zone, clock, 25, smarthost=bad).run_once()
    assert states(store, other)["c@anywhere.example"][:2] == (
        QUEUED,
        1,
    )  # relay refused AUTH: retry


def test_routes_option() -> None:
    routes = parse_routes(
        "Example.Internal=smtp+plain://10.0.0.5:25, corp.test=smtps://u:p@mail.corp.test"
    )
    assert routes["example.internal"] == Relay("10.0.0.5", 25, "none")
    assert routes["corp.test"].tls == "implicit" and routes["corp.test"].port == 465
    with pytest.raises(Exception, match="DOMAIN=URL"):
        parse_routes("example.com")


def test_relay_urls() -> None:
    assert Relay.parse("smtps://u:p%40ss@smtp.example.com") == Relay(
        "smtp.example.com", 465, "implicit", "u", "p@ss"
    )
    assert Relay.parse("smtp+plain://10.0.0.5:2525").tls == "none"
    for bad in ("http://x", "smtp://", "smtp://u@host", "smtp://host:port"):
        with pytest.raises(Exception, match="relay"):
            Relay.parse(bad)


async def test_back_off_on_push_back(
    store: SqlMessageStore, clock: FakeClock, dns_zone: DnsZone, start_receiver: StartReceiver
) -> None:
    receiver, port = await start_receiver()
    receiver.refuse["a@example.net"] = Refusal(RefusalKind.RATE_LIMIT, "Try again later")
    dns_zone.add_a("example.net", "127.0.0.1")
    shaper = Shaper(parse_rules("[default]\nsuspend_seconds = 600\n"))
    delivery = worker(store, dns_zone, clock, port)
    delivery._shaper = shaper
    await queue_message(store, clock, "a@example.net")
    await delivery.run_once()
    (status,) = shaper.status(clock.monotonic())
    assert status.suspended_for > 0 and "454 4.7.0" in status.reason
    assert timedelta(seconds=status.suspended_for) <= timedelta(minutes=10)
    await asyncio.sleep(0)
