"""End to end: a live project's message submitted over SMTP is delivered by the outbound MTA to
the recipient's MX (found through the test DNS server), byte for byte as accepted, with a DKIM
signature that verifies."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from postroom.bounces.verp import Verp, resolve
from postroom.core.clock import SystemClock
from postroom.core.types import DELIVERED, IncomingMessage, QueueEntry
from postroom.smtp.protocol import SessionPolicy
from postroom.smtp.server import Listener, SmtpServer
from tests.dnszone import DnsZone, dkimpy_verify

from .conftest import Env, start_env

MESSAGE = (
    b"From: App <app@example.com>\r\nTo: Reader <reader@example.net>\r\nSubject: out\r\n\r\n"
    b"Delivered for real.\r\n"
)


class Receiver:
    """A receiving MX on loopback (Postroom's own SMTP edge), in its own thread and loop."""

    checks_sender = False
    checks_recipient = False

    def __init__(self) -> None:
        self.messages: list[IncomingMessage] = []
        self.loop = asyncio.new_event_loop()
        self.server: SmtpServer | None = None
        ready = threading.Event()

        async def start() -> None:
            listener = Listener("mx", "127.0.0.1", 0, SessionPolicy(hostname="mx.example.net"))
            self.server = SmtpServer(listener, self, clock=SystemClock())  # type: ignore[arg-type]
            await self.server.start()
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(start(), self.loop)
        ready.wait(10)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    async def deliver(self, message: IncomingMessage) -> str:
        self.messages.append(message)
        return "R1"

    async def authenticate(self, *args: Any) -> str | None:
        return None

    def check_sender(self, *args: Any) -> None:
        return None

    def check_recipient(self, *args: Any) -> None:
        return None

    def session_ended(self, summary: dict[str, Any]) -> None:
        pass

    def refused(self, door: str, reason: str) -> None:
        pass

    def stop(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def delivering(
    tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone, receiver: Receiver
) -> Iterator[Env]:
    environment = start_env(
        tmp_path,
        ca,
        dns_zone,
        delivery=True,
        resolver=dns_zone.nameserver,
        delivery_allow_private=True,
        delivery_mx_port=receiver.port,
    )
    try:
        yield environment
    finally:
        environment.server.stop()


def settled(env: Env, message_id: str) -> list[QueueEntry]:
    """The message's queue entries once the delivery job (every second of the server's fake
    clock, moved on here) has finished them; bounded: after 30 s the entries as they are."""
    deadline = time.monotonic() + 30
    while True:
        entries = env.queue(message_id)
        if all(not e.pending for e in entries) or time.monotonic() > deadline:
            return entries
        env.tick()
        time.sleep(0.05)


def test_submitted_message_is_delivered_to_the_mx(
    delivering: Env, receiver: Receiver, dns_zone: DnsZone
) -> None:
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    with delivering.smtp() as client:
        client.sendmail("app@example.com", ["reader@example.net"], MESSAGE)
    (record,) = delivering.messages()
    accepted = delivering.raw(record)
    assert [e.status for e in settled(delivering, record.id)] == [DELIVERED]
    (got,) = receiver.messages
    # The return path is the message's own (VERP) on the sender domain's bounce domain.
    assert got.envelope.mail_from.endswith("@rp.example.com")
    verp = Verp.load_or_create(delivering.tmp / "data")
    found = resolve(got.envelope.mail_from, verp, delivering.store.queue)
    assert found is not None and (found.message_id, found.recipient) == (
        record.id,
        "reader@example.net",
    )
    assert got.envelope.recipients == ("reader@example.net",)
    assert got.data == accepted  # byte-identical to what was accepted and stored
    assert dkimpy_verify(got.data, dns_zone)


def test_unroutable_recipient_fails_and_is_reported(delivering: Env, dns_zone: DnsZone) -> None:
    dns_zone.add_mx("nullmx.example", 0, ".")
    with delivering.smtp() as client:
        client.sendmail("app@example.com", ["someone@nullmx.example"], MESSAGE)
    (record,) = delivering.messages()
    (entry,) = settled(delivering, record.id)
    assert entry.status == "failed" and "5.1.10" in (entry.last_error or "")
