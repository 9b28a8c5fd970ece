"""End to end on the real server: a recipient refused for good by the MX makes a bounce notice
(RFC 3464) that the server delivers back to the sender's own MX, from the null sender; the
original went out with a VERP return path that maps back to it; with the project's notices
turned off through the API, the next failure makes none."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from postroom.bounces.parse import parse_report
from postroom.bounces.verp import Verp, resolve
from postroom.core.errors import Refusal, RefusalKind
from tests.dnszone import DnsZone
from tests.integration.submission.test_delivery_e2e import Receiver

from .conftest import Env, start_env

MESSAGE = b"From: App <app@example.com>\r\nTo: x\r\nSubject: Receipt\r\n\r\nThanks.\r\n"


class Refusing(Receiver):
    checks_recipient = True

    def check_recipient(self, *args: Any) -> Refusal | None:
        if args[2].startswith("gone"):
            return Refusal(RefusalKind.UNKNOWN_RECIPIENT, "No such user")
        return None


@pytest.fixture
def receiver() -> Iterator[Refusing]:
    started = Refusing()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def delivering(
    tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone, receiver: Refusing
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


def wait_for(env: Env, check: Any, seconds: float = 30) -> None:
    """Until `check()`, moving the server's fake clock on (the delivery job runs every second
    of it); bounded by `seconds` of real time."""
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        env.tick()
        time.sleep(0.05)


def test_a_bounce_comes_back_to_the_sender(
    delivering: Env, receiver: Refusing, dns_zone: DnsZone
) -> None:
    dns_zone.add_a("example.net", "127.0.0.1")
    dns_zone.add_a("example.com", "127.0.0.1")  # the sender's MX: the same receiver
    with delivering.smtp() as smtp:
        smtp.sendmail("app@example.com", ["gone@example.net"], MESSAGE)

    def notices() -> list[Any]:
        return [m for m in receiver.messages if m.envelope.mail_from == ""]

    wait_for(delivering, lambda: notices())
    (notice,) = notices()
    assert notice.envelope.recipients == ("app@example.com",)
    report = parse_report(notice.data)
    assert report is not None and report.kind == "bounce"
    assert (report.recipients[0].address, report.recipients[0].status) == (
        "gone@example.net",
        "5.1.1",
    )
    (original,) = [m for m in delivering.messages() if "bounce-notice" not in m.tags]
    assert original.status == "bounced"
    verp = Verp.load_or_create(delivering.tmp / "data")
    (entry,) = delivering.queue(original.id)
    assert verp.entry_of(verp.address(entry.id, "rp.example.com")) == entry.id
    found = resolve(verp.address(entry.id, "rp.example.com"), verp, delivering.store.queue)
    assert found is not None and found.recipient == "gone@example.net"

    with httpx.Client(base_url=delivering.server.base_url, timeout=30) as http:
        service = delivering.server.app.platform_service
        assert service is not None
        key = service.create_api_key("acme", "ops", ["manage"])
        turned = http.put(
            "/api/v2/projects/acme/delivery-settings",
            json={"bounce_notices": False},
            headers={"Authorization": f"Bearer {key.token}"},
        )
        assert turned.status_code == 200
    with delivering.smtp() as smtp:
        smtp.sendmail("app@example.com", ["gone2@example.net"], MESSAGE)
    wait_for(delivering, lambda: all(not e.pending for e in delivering.queue()))
    # A notice is written in the failure's own transaction: with every entry finished, none
    # came of the second failure.
    assert all(not e.pending for e in delivering.queue())
    second = [m for m in delivering.messages() if "gone2@example.net" in m.envelope.recipients]
    assert [m.status for m in second] == ["bounced"]
    assert len([m for m in delivering.messages() if "bounce-notice" in m.tags]) == 1
