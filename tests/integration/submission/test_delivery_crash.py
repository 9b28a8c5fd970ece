"""The crash test of issue 10: SIGKILL the delivering process half way through 5,000 messages,
start it again, and check at the receiving MX (by Message-ID) that every recipient arrived at
least once and that the only duplicates are entries the killed process had in flight (claimed,
not yet reported) when it died."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme

from postroom.core.clock import FakeClock
from postroom.core.types import DELIVERED
from tests.dnszone import DnsZone

from .conftest import start_env
from .test_delivery_roles import (
    CountingReceiver,
    counting_receiver,  # noqa: F401  (fixture)
    database_url,  # noqa: F401  (fixture)
    queue_messages,
    start_delivery,
    stop,
)

pytestmark = pytest.mark.postgres

MESSAGES = int(os.environ.get("POSTROOM_CRASH_MESSAGES", "5000"))
LEASE = "15s"  # how long the killed process's claimed entries wait before being taken over


def received_keys(receiver: CountingReceiver) -> list[tuple[bytes, str]]:
    return [(mid, rcpt) for mid, rcpt, _ in list(receiver.received)]


@pytest.mark.timeout(900)
def test_a_killed_delivery_process_loses_nothing_and_repeats_only_what_was_in_flight(
    tmp_path: Path,
    ca: trustme.CA,
    dns_zone: DnsZone,
    database_url: str,  # noqa: F811
    counting_receiver: CountingReceiver,  # noqa: F811
) -> None:
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    env = start_env(
        tmp_path,
        ca,
        dns_zone,
        FakeClock(datetime.now(UTC)),
        database_url=database_url,
        roles=("smtp", "http"),
    )
    logs = [(tmp_path / f"delivery-{i}.log").open("wb") for i in (1, 2)]
    data_dir = tmp_path / "data"
    extra = ("--delivery-lease", LEASE)
    second: subprocess.Popen[bytes] | None = None
    try:
        began = time.monotonic()
        queue_messages(env, MESSAGES)
        print(f"queued {MESSAGES} messages in {time.monotonic() - began:.1f} s")
        port = counting_receiver.port
        first = start_delivery(
            "d1.postroom.test", database_url, data_dir, dns_zone, port, logs[0], extra
        )
        # Kill it once a quarter has arrived: well inside its work.
        deadline = time.monotonic() + 300
        while len(counting_receiver.received) < MESSAGES // 4 and time.monotonic() < deadline:
            assert first.poll() is None, "the delivering process exited"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        killed_at = datetime.now(UTC)
        before_restart = len(counting_receiver.received)
        entries = env.store.queue.all_entries()
        in_flight = {
            e.recipient
            for e in entries
            if e.pending
            and e.lease_owner is not None
            and e.lease_expires is not None
            and e.lease_expires > killed_at
        }
        done_before = sum(1 for e in entries if not e.pending)
        print(
            f"killed after {before_restart} deliveries arrived; {done_before} entries reported "
            f"done; {len(in_flight)} entries in flight (claimed, not reported)"
        )
        assert 0 < before_restart < MESSAGES

        began = time.monotonic()
        second = start_delivery(
            "d2.postroom.test", database_url, data_dir, dns_zone, port, logs[1], extra
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if len({k for k in received_keys(counting_receiver)}) >= MESSAGES and not any(
                e.pending for e in env.store.queue.all_entries()
            ):
                break
            assert second.poll() is None, "the restarted process exited"
            time.sleep(1)
        print(f"the restarted process finished in {time.monotonic() - began:.1f} s")
        time.sleep(2)  # a late duplicate would arrive now
        final = env.store.queue.all_entries()
    finally:
        if second is not None:
            stop(second)
        for log in logs:
            log.close()
        env.server.stop()

    received = Counter(received_keys(counting_receiver))
    expected = {(f"<m{n}@example.com>".encode(), f"r{n}@example.net") for n in range(MESSAGES)}
    duplicated = {rcpt for (_, rcpt), times in received.items() if times > 1}
    print(
        f"{sum(received.values())} deliveries for {MESSAGES} recipients: "
        f"{len(set(received) & expected)} recipients reached, {len(duplicated)} duplicated, "
        f"{len(in_flight)} were in flight at the kill"
    )
    assert set(received) == expected  # every recipient at least once, nothing else
    assert duplicated <= in_flight  # duplicates only among the entries in flight
    assert len(duplicated) <= len(in_flight)
    assert max(received.values()) <= 2
    assert {e.status for e in final} == {DELIVERED} and len(final) == MESSAGES


STOPPED_MESSAGES = int(os.environ.get("POSTROOM_STOP_MESSAGES", "1000"))


@pytest.mark.timeout(600)
def test_a_stopped_delivery_process_repeats_nothing(
    tmp_path: Path,
    ca: trustme.CA,
    dns_zone: DnsZone,
    database_url: str,  # noqa: F811
    counting_receiver: CountingReceiver,  # noqa: F811
) -> None:
    """SIGTERM (not SIGKILL) while delivering: the transactions in progress finish and are
    recorded, the entries claimed and not tried are given back, so after a restart every
    recipient arrives exactly once; nothing waits for a lease to run out."""
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    env = start_env(
        tmp_path,
        ca,
        dns_zone,
        FakeClock(datetime.now(UTC)),
        database_url=database_url,
        roles=("smtp", "http"),
    )
    logs = [(tmp_path / f"delivery-{i}.log").open("wb") for i in (1, 2)]
    data_dir = tmp_path / "data"
    extra = ("--delivery-lease", "10m")  # a restart finds the entries due at once, or not at all
    second: subprocess.Popen[bytes] | None = None
    try:
        queue_messages(env, STOPPED_MESSAGES)
        port = counting_receiver.port
        first = start_delivery(
            "d1.postroom.test", database_url, data_dir, dns_zone, port, logs[0], extra
        )
        deadline = time.monotonic() + 300
        while (
            len(counting_receiver.received) < STOPPED_MESSAGES // 4 and time.monotonic() < deadline
        ):
            assert first.poll() is None, "the delivering process exited"
            time.sleep(0.02)
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0
        stopped_after = len(counting_receiver.received)
        entries = env.store.queue.all_entries()
        leased = [e for e in entries if e.pending and e.lease_owner is not None]
        print(
            f"stopped after {stopped_after} deliveries arrived; "
            f"{sum(1 for e in entries if not e.pending)} entries reported done"
        )
        assert 0 < stopped_after < STOPPED_MESSAGES
        assert leased == []  # everything claimed was either recorded or given back
        assert sum(1 for e in entries if e.status == DELIVERED) == stopped_after

        second = start_delivery(
            "d2.postroom.test", database_url, data_dir, dns_zone, port, logs[1], extra
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if not any(e.pending for e in env.store.queue.all_entries()):
                break
            assert second.poll() is None, "the restarted process exited"
            time.sleep(0.5)
        time.sleep(2)  # a late duplicate would arrive now
        final = env.store.queue.all_entries()
    finally:
        if second is not None:
            stop(second)
        for log in logs:
            log.close()
        env.server.stop()

    received = Counter(received_keys(counting_receiver))
    expected = {
        (f"<m{n}@example.com>".encode(), f"r{n}@example.net") for n in range(STOPPED_MESSAGES)
    }
    assert set(received) == expected
    assert max(received.values()) == 1  # no duplicate at all
    assert {e.status for e in final} == {DELIVERED} and len(final) == STOPPED_MESSAGES
