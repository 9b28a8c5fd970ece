"""Several processes on one PostgreSQL database (`postroom serve --roles`): one process with the
smtp and http roles accepts and queues, two processes with only the delivery role deliver.
Each recipient reaches the receiving MX exactly once, counted there by Message-ID."""

from __future__ import annotations

import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import psycopg
import pytest
import trustme
from sqlalchemy.engine import make_url

from postroom.core.clock import FakeClock
from postroom.core.types import DELIVERED, IncomingMessage
from tests.dnszone import DnsZone
from tests.services import require_postgres

from .conftest import Env, start_env
from .test_delivery_e2e import Receiver

pytestmark = pytest.mark.postgres

MESSAGES = 2000
SENDERS = 4  # SMTP connections queueing in parallel
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


class CountingReceiver(Receiver):
    """The receiving MX, keeping only (Message-ID, recipient) and the sending process's HELO."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str, str]] = []
        super().__init__()

    async def deliver(self, message: IncomingMessage) -> str:
        found = MESSAGE_ID.search(message.data)
        message_id = found.group(1) if found else b"(none)"
        for recipient in message.envelope.recipients:
            self.received.append((message_id, recipient, message.session.helo))
        return "R1"


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    url = require_postgres()
    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"postroom_t_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def counting_receiver() -> Iterator[CountingReceiver]:
    started = CountingReceiver()
    try:
        yield started
    finally:
        started.stop()


def message(number: int) -> bytes:
    return (
        f"From: App <app@example.com>\r\nTo: r{number}@example.net\r\n"
        f"Message-ID: <m{number}@example.com>\r\nSubject: roles {number}\r\n\r\n"
        f"Message {number}.\r\n"
    ).encode()


def queue_messages(env: Env, count: int) -> None:
    """`count` messages of one recipient each, through the submission door, in parallel."""
    errors: list[BaseException] = []

    def send(first: int) -> None:
        try:
            with env.smtp() as client:
                for number in range(first, count, SENDERS):
                    client.sendmail("app@example.com", [f"r{number}@example.net"], message(number))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors


def start_delivery(
    name: str,
    url: str,
    data_dir: Path,
    zone: DnsZone,
    mx_port: int,
    log: IO[bytes],
    extra: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """`postroom serve --roles delivery`: no listener, only the outbound MTA."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "postroom.cli",
            "serve",
            "--roles",
            "delivery",
            "--database-url",
            url,
            "--data-dir",
            str(data_dir),
            "--hostname",
            name,
            "--resolver",
            zone.nameserver,
            "--delivery-allow-private",
            "--delivery-mx-port",
            str(mx_port),
            *extra,
        ],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(10)


@pytest.mark.timeout(300)
def test_two_delivery_processes_deliver_each_recipient_exactly_once(
    tmp_path: Path,
    ca: trustme.CA,
    dns_zone: DnsZone,
    database_url: str,
    counting_receiver: CountingReceiver,
) -> None:
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    # The accepting process: smtp and http only (its clock is the real time: the delivering
    # processes read the real one to find what is due).
    env = start_env(
        tmp_path,
        ca,
        dns_zone,
        FakeClock(datetime.now(UTC)),
        database_url=database_url,
        roles=("smtp", "http"),
        delivery=True,  # on, but not this process's role
    )
    assert "delivery" not in env.server.app.jobs.names
    assert "pg-upkeep" in env.server.app.jobs.names  # a process on PostgreSQL
    final = []
    processes: list[subprocess.Popen[bytes]] = []
    logs = [(tmp_path / f"delivery-{i}.log").open("wb") for i in (1, 2)]
    try:
        began = time.monotonic()
        queue_messages(env, MESSAGES)
        queued = time.monotonic()
        entries = env.store.queue.all_entries()
        assert len(entries) == MESSAGES and all(e.pending for e in entries)
        # Both delivering processes start on the full queue at once, on the same database.
        for number, log in zip((1, 2), logs, strict=True):
            processes.append(
                start_delivery(
                    f"d{number}.postroom.test",
                    database_url,
                    tmp_path / "data",  # shared with the accepting process (its keys)
                    dns_zone,
                    counting_receiver.port,
                    log,
                )
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            # The queue is read only once the receiver has them all (reading it is not free).
            if len(counting_receiver.received) >= MESSAGES and not any(
                e.pending for e in env.store.queue.all_entries()
            ):
                break
            assert all(p.poll() is None for p in processes), "a delivering process exited"
            time.sleep(0.5)
        delivered = time.monotonic()
        print(f"queued in {queued - began:.1f} s, delivered in {delivered - queued:.1f} s")
        time.sleep(2)  # a late duplicate would arrive now
        final = env.store.queue.all_entries()
    finally:
        codes = [stop(p) for p in processes]
        for log in logs:
            log.close()
        env.server.stop()
    assert codes == [0, 0], [(tmp_path / f"delivery-{i}.log").read_text()[-2000:] for i in (1, 2)]

    received = Counter((mid, rcpt) for mid, rcpt, _ in counting_receiver.received)
    expected = {(f"<m{n}@example.com>".encode(), f"r{n}@example.net") for n in range(MESSAGES)}
    duplicates = {key: times for key, times in received.items() if times > 1}
    print(
        f"received {len(counting_receiver.received)} deliveries of {MESSAGES} recipients; "
        f"{len(duplicates)} duplicated; by process: "
        f"{dict(Counter(helo for _, _, helo in counting_receiver.received))}"
    )
    assert set(received) == expected
    assert duplicates == {}
    by_process = Counter(helo for _, _, helo in counting_receiver.received)
    assert set(by_process) == {"d1.postroom.test", "d2.postroom.test"}  # both took a share
    assert len(final) == MESSAGES and {e.status for e in final} == {DELIVERED}
