"""Queue views show the sites the delivering worker suspended, and why: a real server delivers
to a receiving MX on loopback (found through the test DNS server) that pushes back with
454 4.7.0; the project's queue view (API and admin page) names the domain's site, suspended,
with that reply."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from postroom.core.errors import Refusal, RefusalKind
from tests.dnszone import DnsZone
from tests.integration.submission.test_delivery_e2e import Receiver

from .conftest import Env, start_env

MESSAGE = b"From: App <app@example.com>\r\nTo: x\r\nSubject: Slow down\r\n\r\nHello.\r\n"


class PushingBack(Receiver):
    checks_recipient = True

    def check_recipient(self, *args: Any) -> Refusal | None:
        return Refusal(RefusalKind.RATE_LIMIT, "Too many messages, try again later")


@pytest.fixture
def receiver() -> Iterator[PushingBack]:
    started = PushingBack()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def delivering(
    tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone, receiver: PushingBack
) -> Iterator[Env]:
    env = start_env(
        tmp_path,
        ca,
        dns_zone,
        delivery=True,
        resolver=dns_zone.nameserver,
        delivery_allow_private=True,
        delivery_mx_port=receiver.port,
    )
    try:
        yield env
    finally:
        env.server.stop()


def test_a_suspended_site_and_why(delivering: Env, dns_zone: DnsZone) -> None:
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    with delivering.smtp() as smtp:
        smtp.sendmail("app@example.com", ["ann@example.net"], MESSAGE)
    deadline = time.monotonic() + 30
    while not any(e.attempts for e in delivering.queue()) and time.monotonic() < deadline:
        delivering.tick()  # the delivery job runs every second of the server's fake clock
        time.sleep(0.05)
    (entry,) = delivering.queue()
    assert entry.attempts == 1 and entry.pending
    with httpx.Client(base_url=delivering.server.base_url, timeout=30) as http:
        view = http.get("/api/v2/projects/acme/queue").json()
        (domain,) = view["domains"]
        assert domain["domain"] == "example.net" and domain["site"] == "mx.example.net"
        (site,) = view["sites"]
        assert site["site"] == "mx.example.net" and site["suspended"] is True
        assert "454 4.7.0" in site["reason"] and site["suspended_for"] > 0
        page = http.get("/admin/projects/acme/delivery", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "Delivery sites" in page.text and "454 4.7.0" in page.text
