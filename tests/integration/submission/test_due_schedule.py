"""The delivery worker's in-memory schedule of due work (delivery/due.py, delivery/loop.py),
end to end: mail submitted over real SMTP to a live project is delivered to a receiving MX on
loopback at once (the server's clock is never moved), a deferral (451 "try again later" from
the receiver) is retried when the injected clock passes its retry time with no claim in
between and once the clock has passed the site's suspension that the reply began (nothing goes
to the site before: the retry is postponed to the suspension's end), retry-now wakes the
worker, and a server started on a queue filled before it delivers what it finds.

Claims are counted by a hook on the server's queue store (each call of `claim` is one claim
query); the safety read is set to an hour so that only the schedule makes the worker claim."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from postroom.core.clock import FakeClock
from postroom.core.errors import Refusal, RefusalKind
from postroom.core.ids import new_id
from postroom.core.types import (
    DELIVERED,
    Envelope,
    IncomingMessage,
    NewMessage,
    QueueEntry,
    QueueFilter,
)
from postroom.delivery.loop import DeliveryLoop
from postroom.pipeline.complete import complete_message
from postroom.pipeline.deliveries import deliveries_for
from postroom.storage.engine import open_store
from postroom.storage.queue import SqlQueueStore
from postroom.storage.store import SqlMessageStore
from tests.dnszone import DnsZone
from tests.harness import ServerThread

from .conftest import Env, start_env
from .test_delivery_e2e import MESSAGE, Receiver

HOUR = 3600.0


class FlakyReceiver(Receiver):
    """The receiving MX: answers 451 4.3.0 "... try again later" to the first `refuse`
    messages, then takes them. The text asks the sender to slow down: the delivering server
    suspends the site (the shipped default: 300 s)."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.refused_count = 0
        super().__init__()

    async def deliver(self, message: IncomingMessage) -> str:
        if self.refused_count < self.refuse:
            self.refused_count += 1
            raise Refusal(RefusalKind.TEMPORARY_FAILURE, "Mailbox busy, try again later")
        return await super().deliver(message)


class ClaimCounter:
    """Counts the claim queries of the server's queue store (a hook on its `claim`)."""

    def __init__(self, queue: SqlQueueStore) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        real = queue.claim

        def counted(*args: Any, **kwargs: Any) -> list[QueueEntry]:
            with self._lock:
                self.calls += 1
            return real(*args, **kwargs)

        queue.claim = counted  # type: ignore[method-assign]


def wait_for(check: Callable[[], bool], seconds: float = 20.0) -> bool:
    """Poll `check` in real time (the server's fake clock is not moved)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def loop_of(env: Env) -> DeliveryLoop:
    found = env.server.app.delivery_loop
    assert found is not None
    return found


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[FlakyReceiver]:
    started = FlakyReceiver(refuse=int(getattr(request, "param", 0)))
    try:
        yield started
    finally:
        started.stop()


def delivering_env(
    tmp_path: Path, ca: trustme.CA, zone: DnsZone, receiver: Receiver, **overrides: Any
) -> Env:
    zone.add_mx("example.net", 10, "mx.example.net")
    zone.add_a("mx.example.net", "127.0.0.1")
    values: dict[str, Any] = {
        "delivery": True,
        "resolver": zone.nameserver,
        "delivery_allow_private": True,
        "delivery_mx_port": receiver.port,
        "delivery_poll_interval": HOUR,  # only the schedule makes the worker claim
    }
    values.update(overrides)
    return start_env(tmp_path, ca, zone, **values)


@pytest.fixture
def delivering(
    tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone, receiver: FlakyReceiver
) -> Iterator[Env]:
    environment = delivering_env(tmp_path, ca, dns_zone, receiver)
    try:
        yield environment
    finally:
        environment.server.stop()


def suspension_end(env: Env) -> float:
    """When (on the server's monotonic clock) the suspension of example.net's site ends."""
    delivery = env.server.app.delivery
    assert delivery is not None
    site = delivery.sites_of(["example.net"])["example.net"]
    assert site.suspended_for > 0 and "try again later" in site.reason
    return env.clock.monotonic() + site.suspended_for


def waits_for(env: Env, when: float) -> bool:
    """Whether something sleeps on the server's clock until `when` (monotonic)."""
    return any(abs(wake - when) < 0.001 for wake in env.clock.wakeups)


def postponed_to(env: Env, message_id: str, when: float) -> bool:
    """Whether the message's one entry is given back, untried since its one attempt, due at
    `when` (the server's monotonic clock): postponed to a suspension's end."""
    due = env.clock.now() + timedelta(seconds=when - env.clock.monotonic())
    return [(e.next_attempt, e.attempts, e.lease_owner) for e in env.queue(message_id)] == [
        (due, 1, None)
    ]


def idle(env: Env) -> None:
    """Until the delivery loop waits on the clock (its start-up read done)."""
    assert wait_for(lambda: loop_of(env).reads >= 1 and env.clock.sleepers > 0)


def test_a_message_queued_now_is_claimed_at_once_without_moving_the_clock(
    delivering: Env, receiver: FlakyReceiver
) -> None:
    idle(delivering)
    claims = ClaimCounter(delivering.store.queue)
    reads = loop_of(delivering).reads
    started = delivering.clock.now()
    with delivering.smtp() as client:
        client.sendmail("app@example.com", ["reader@example.net"], MESSAGE)
    assert wait_for(lambda: len(receiver.messages) == 1)
    (record,) = delivering.messages()
    assert wait_for(lambda: [e.status for e in delivering.queue(record.id)] == [DELIVERED])
    assert delivering.clock.now() == started  # no clock move was needed
    assert 1 <= claims.calls <= 3  # the claim that took it (and one finding nothing more)
    assert loop_of(delivering).reads == reads  # no read of the database's due times


@pytest.mark.parametrize("receiver", [1], indirect=True)
def test_a_deferral_is_retried_when_the_clock_passes_its_time_with_no_claim_before(
    delivering: Env, receiver: FlakyReceiver
) -> None:
    idle(delivering)
    with delivering.smtp() as client:
        client.sendmail("app@example.com", ["reader@example.net"], MESSAGE)
    (record,) = delivering.messages()

    def deferred() -> list[QueueEntry]:
        return [e for e in delivering.queue(record.id) if e.attempts == 1 and e.pending]

    assert wait_for(lambda: bool(deferred()) and delivering.clock.sleepers > 0)
    (entry,) = deferred()
    assert receiver.refused_count == 1 and receiver.messages == []
    retry_in = (entry.next_attempt - delivering.clock.now()).total_seconds()
    assert 45 <= retry_in <= 75  # the first retry delay, 60 s with jitter
    resumes = suspension_end(delivering)
    assert resumes - delivering.clock.monotonic() > retry_in + 5
    claims = ClaimCounter(delivering.store.queue)
    reads = loop_of(delivering).reads
    # The clock moves to just before the retry time in steps: the worker wakes for nothing,
    # makes no claim and no read.
    while delivering.clock.now() + timedelta(seconds=5) < entry.next_attempt:
        delivering.tick(5)
        time.sleep(0.02)
    assert wait_for(lambda: delivering.clock.sleepers > 0)
    time.sleep(0.2)
    assert claims.calls == 0
    assert receiver.messages == []
    # Past the retry time (rounded up to the schedule's second): claimed, but the site is
    # suspended: postponed untried to the suspension's end (the schedule wakes the loop
    # then), nothing goes to the receiver.
    delivering.tick((entry.next_attempt - delivering.clock.now()).total_seconds() + 1.0)
    assert wait_for(
        lambda: (
            claims.calls >= 1
            and postponed_to(delivering, record.id, resumes)
            and waits_for(delivering, resumes)
        )
    )
    delivering.tick(resumes - 1 - delivering.clock.monotonic())
    time.sleep(0.2)
    assert receiver.messages == [] and receiver.refused_count == 1
    # Past the suspension: delivered.
    delivering.tick(1)
    assert wait_for(lambda: len(receiver.messages) == 1)
    assert wait_for(lambda: [e.status for e in delivering.queue(record.id)] == [DELIVERED])
    assert 1 <= claims.calls <= 3
    assert loop_of(delivering).reads == reads


@pytest.mark.parametrize("receiver", [1], indirect=True)
def test_retry_now_wakes_the_worker_for_a_deferred_entry(
    delivering: Env, receiver: FlakyReceiver
) -> None:
    idle(delivering)
    with delivering.smtp() as client:
        client.sendmail("app@example.com", ["reader@example.net"], MESSAGE)
    (record,) = delivering.messages()
    assert wait_for(lambda: [e.attempts for e in delivering.queue(record.id)] == [1])
    assert wait_for(lambda: delivering.clock.sleepers > 0)
    resumes = suspension_end(delivering)
    claims = ClaimCounter(delivering.store.queue)
    changed = delivering.store.queue_admin.act(
        "acme", "retry", QueueFilter(message_ids=(record.id,)), delivering.clock.now()
    )
    assert len(changed) == 1
    # Claimed at once; retry-now does not lift the site's suspension: postponed untried to
    # its end (no attempt counted), sent when it ends.
    assert wait_for(lambda: claims.calls >= 1 and postponed_to(delivering, record.id, resumes))
    time.sleep(0.2)
    assert receiver.messages == []
    delivering.tick(resumes - delivering.clock.monotonic())
    assert wait_for(lambda: len(receiver.messages) == 1)
    assert wait_for(lambda: [e.status for e in delivering.queue(record.id)] == [DELIVERED])
    assert claims.calls >= 1


def test_a_server_started_on_a_filled_queue_delivers_what_it_finds(
    tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone, receiver: FlakyReceiver
) -> None:
    """Entries queued while no process delivered (a process without the delivery role, as
    before a restart) are in no schedule: the start-up read of the database finds them."""
    queueing = delivering_env(tmp_path, ca, dns_zone, receiver, roles=("smtp", "http"))
    try:
        assert "delivery" not in queueing.server.app.jobs.names
        with queueing.smtp() as client:
            for number in range(3):
                client.sendmail("app@example.com", [f"r{number}@example.net"], MESSAGE)
        assert len(queueing.queue()) == 3 and all(e.pending for e in queueing.queue())
        config = queueing.server.app.config
    finally:
        queueing.server.stop()
    assert receiver.messages == []
    roles = ("smtp", "http", "delivery")
    moved = queueing.clock.now()
    server = ServerThread(dataclasses.replace(config, roles=roles), queueing.clock).start()
    try:
        assert wait_for(lambda: len(receiver.messages) == 3)
        store = server.app.store
        assert isinstance(store, SqlMessageStore)
        assert wait_for(lambda: {e.status for e in store.queue.all_entries()} == {DELIVERED})
        delivery_loop = server.app.delivery_loop
        assert delivery_loop is not None and delivery_loop.reads == 1  # the start-up read
    finally:
        server.stop()
    assert queueing.clock.now() == moved  # no clock move was needed
    got = sorted(m.envelope.recipients for m in receiver.messages)
    assert got == [("r0@example.net",), ("r1@example.net",), ("r2@example.net",)]


def queue_elsewhere(data_dir: Path, clock: FakeClock, recipient: str) -> None:
    """Queue a live message through a store of its own on the server's database, as another
    process sharing it would: the server's store signals nothing."""

    async def add() -> None:
        store = open_store(str(data_dir), clock, writer_process=False, complete=complete_message)
        try:
            raw = (
                f"From: App <app@example.com>\r\nTo: {recipient}\r\n"
                f"Subject: from elsewhere\r\n\r\nQueued by another process.\r\n"
            ).encode()
            envelope = Envelope("app@example.com", (recipient,), {}, ({},))
            await store.add(
                NewMessage(
                    id=new_id(clock.now()),
                    project="acme",
                    created=clock.now(),
                    raw=raw,
                    envelope=envelope,
                    summary=None,
                    tags=(),
                    status="queued",
                    deliveries=deliveries_for(envelope),
                    sends=1,
                )
            )
        finally:
            await store.close()

    asyncio.run(add())


def test_the_safety_read_finds_what_another_process_queued(
    tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone, receiver: FlakyReceiver
) -> None:
    env = delivering_env(tmp_path, ca, dns_zone, receiver, delivery_poll_interval=10.0)
    try:
        idle(env)
        claims = ClaimCounter(env.store.queue)
        reads = loop_of(env).reads
        queue_elsewhere(tmp_path / "data", env.clock, "other@example.net")
        assert len(env.queue()) == 1
        time.sleep(0.3)
        assert claims.calls == 0 and receiver.messages == []  # this process was not told
        env.tick(10)  # the safety read's time
        assert wait_for(lambda: len(receiver.messages) == 1)
        assert wait_for(lambda: [e.status for e in env.queue()] == [DELIVERED])
        assert loop_of(env).reads == reads + 1
        assert claims.calls >= 1
    finally:
        env.server.stop()
