"""End to end on the real server, on SQLite and PostgreSQL: a live project sends a message that
a scripted receiving server accepts (each recipient with its own VERP return path); later a
delivery status notification for one recipient and an ARF complaint about another arrive over
SMTP at the MX door, addressed to their return paths. Each becomes an event for the message and
the recipient its return path names (the report's own recipient line is not trusted to pick
it), the suppression feed suppresses both, and the next message to them is accepted with only
`suppressed` events for them while the third recipient is delivered."""

from __future__ import annotations

import secrets
import smtplib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trustme
from sqlalchemy.engine import make_url

from postroom.config import HostPort
from postroom.core.clock import FakeClock
from postroom.core.events import Event, EventQuery
from tests.dnszone import DnsZone
from tests.integration.submission.test_delivery_e2e import Receiver
from tests.services import require_postgres

from .conftest import Env, start_env

MESSAGE = b"From: App <app@example.com>\r\nTo: x\r\nSubject: Receipt\r\n\r\nThanks.\r\n"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    ca: trustme.CA,
    dns_zone: DnsZone,
    receiver: Receiver,
) -> Iterator[Env]:
    overrides: dict[str, Any] = {
        "mx": HostPort("127.0.0.1", 0),
        "delivery": True,
        "resolver": dns_zone.nameserver,
        "delivery_allow_private": True,
        "delivery_mx_port": receiver.port,
        # The DSN below (with the original message returned) is kept in a spool file while it
        # arrives: the door reads the report from there.
        "smtp_spool_threshold": 16 * 1024,
    }
    admin = name = ""
    if request.param == "postgresql":
        url = require_postgres()
        admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        name = f"postroom_t_{secrets.token_hex(6)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        overrides["database_url"] = (
            make_url(url).set(database=name).render_as_string(hide_password=False)
        )
    clock = FakeClock(datetime.now(UTC))
    env = start_env(tmp_path, ca, dns_zone, clock, **overrides)
    try:
        yield env
    finally:
        env.server.stop()
        if name:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for(env: Env, check: Any, seconds: float = 30) -> Any:
    """Until `check()` gives something, moving the server's fake clock on (the delivery and
    suppression jobs run on it); bounded by `seconds` of real time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        env.tick()
        time.sleep(0.05)
    return check()


def events(env: Env, kind: str, recipient: str) -> list[Event]:
    query = EventQuery(types=(kind,), recipient=recipient)  # type: ignore[arg-type]
    return list(env.store.events.query("acme", query).events)


def dsn(recipient: str, message_id: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: <undisclosed>\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\n<{recipient}>: host said: 550 5.1.1 "
        "mailbox does not exist (in reply to end of DATA command)\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Remote-MTA: dns; store.example.net\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 <" + recipient + "> mailbox does not exist\r\n"
        "--b\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: App <app@example.com>\r\nSubject: Receipt\r\nMessage-ID: <{message_id}>\r\n"
        "\r\n" + "Thanks for your order; here is what you bought.\r\n" * 2000 + "\r\n--b--\r\n"
    ).encode()


def arf(recipient: str) -> bytes:
    return (
        "From: Feedback Loop <fbl@mx.example.net>\r\n"
        "To: <undisclosed>\r\n"
        "Subject: Complaint about a message\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="f"\r\n\r\n'
        "--f\r\nContent-Type: text/plain\r\n\r\nA user marked this message as spam.\r\n"
        "--f\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: ExampleFBL/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: {recipient}\r\nArrival-Date: Thu, 1 Jan 2026 00:00:00 +0000\r\n"
        "Source-IP: 192.0.2.7\r\n"
        "--f\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "From: App <app@example.com>\r\nSubject: Receipt\r\n\r\n--f--\r\n"
    ).encode()


def to_mx(env: Env, return_path: str, report: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", env.server.app.mx_port, timeout=30) as client:
        client.starttls(context=env.client_context())
        assert client.sendmail("", [return_path], report) == {}


def test_a_dsn_and_a_complaint_at_the_mx_door_suppress_their_recipients(
    live: Env, receiver: Receiver, dns_zone: DnsZone
) -> None:
    dns_zone.add_a("example.net", "127.0.0.1")
    first = ["gone@example.net", "angry@example.net", "happy@example.net"]
    with live.smtp() as smtp:
        smtp.sendmail("app@example.com", first, MESSAGE)
    wait_for(live, lambda: len(receiver.messages) >= 3)
    return_paths = {m.envelope.recipients[0]: m.envelope.mail_from for m in receiver.messages}
    assert set(return_paths) == set(first)
    assert all(
        p.startswith("bounces+") and p.endswith("@rp.example.com") for p in return_paths.values()
    )
    (original,) = live.messages()

    # The DSN names the recipient; the complaint, to be sure the return path is what counts,
    # names another address than the one its return path was made for.
    to_mx(live, return_paths["gone@example.net"], dsn("gone@example.net", original.id))
    to_mx(live, return_paths["angry@example.net"], arf("someone.else@example.org"))

    (bounce,) = wait_for(live, lambda: events(live, "bounce", "gone@example.net"))
    assert bounce.message_id == original.id
    assert bounce.detail["async"] is True and bounce.detail["hard"] is True
    assert (bounce.detail["enhanced"], bounce.detail["reason"]) == ("5.1.1", "userunknown")
    assert bounce.detail["bounceType"] == "Permanent"
    (complaint,) = wait_for(live, lambda: events(live, "complaint", "angry@example.net"))
    assert complaint.message_id == original.id
    assert complaint.detail["feedback_type"] == "abuse"
    assert events(live, "bounce", "happy@example.net") == []
    assert events(live, "complaint", "someone.else@example.org") == []

    suppressions = live.store.suppressions

    def suppressed() -> dict[str, Any]:
        return suppressions.suppressed("acme", first, live.clock.now())

    found = wait_for(live, lambda: len(suppressed()) == 2 and suppressed())
    assert {k: v.reason for k, v in found.items()} == {
        "gone@example.net": "bounce",
        "angry@example.net": "complaint",
    }

    delivered_before = len(receiver.messages)
    with live.smtp() as smtp:
        smtp.sendmail("app@example.com", first, MESSAGE)
    second = wait_for(live, lambda: [m for m in live.messages() if m.id != original.id])
    (again,) = second
    assert [e.recipient for e in events(live, "suppressed", "gone@example.net")] == [
        "gone@example.net"
    ]
    assert len(events(live, "suppressed", "angry@example.net")) == 1
    assert [e.recipient for e in live.queue(again.id)] == ["happy@example.net"]
    wait_for(live, lambda: len(receiver.messages) > delivered_before)
    assert [m.envelope.recipients for m in receiver.messages[delivered_before:]] == [
        ("happy@example.net",)
    ]
