"""The bounce notices Postroom sends (RFC 3464): their structure, what RET returns, NOTIFY,
and that a bounce processor (our own parser, and Python's email package) reads them right."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

from postroom.bounces.dsn import (
    FailedRecipient,
    build_dsn,
    wants_delay_notice,
    wants_failure_notice,
)
from postroom.bounces.parse import parse_report

ORIGINAL = (
    b"From: App <app@example.com>\r\nTo: gone@example.net\r\nSubject: Your receipt\r\n"
    b"Message-ID: <r-1@example.com>\r\n\r\nThe body that RET=HDRS leaves out.\r\n"
)
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def notice(ret_full: bool, **failed: object) -> bytes:
    values: dict[str, object] = {
        "recipient": "gone@example.net",
        "status": "5.1.1",
        "diagnostic": "550 5.1.1 No such user\r\nInjected: header",
        "remote_mta": "mx.example.net",
        "orcpt": "rfc822;Gone@Example.net",
        "last_attempt": NOW,
    }
    values.update(failed)
    return build_dsn(
        reporting_mta="out.postroom.test",
        sender="app@example.com",
        original=ORIGINAL,
        arrival=NOW,
        failed=[FailedRecipient(**values)],  # type: ignore[arg-type]
        ret_full=ret_full,
        envid="QQ314159",
        now=NOW,
        subject="Your receipt",
    )


def test_structure_and_fields() -> None:
    raw = notice(ret_full=False)
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/report"
    assert message.get_param("report-type") == "delivery-status"
    assert message["Auto-Submitted"] == "auto-replied"
    assert "app@example.com" in str(message["To"])
    assert "Injected" not in message  # the diagnostic's line break stays in its field
    text, status, original = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    fields = status.as_string()
    for expected in (
        "Reporting-MTA: dns; out.postroom.test",
        "Original-Envelope-Id: QQ314159",
        "Original-Recipient: rfc822;Gone@Example.net",
        "Final-Recipient: rfc822; gone@example.net",
        "Action: failed",
        "Status: 5.1.1",
        "Remote-MTA: dns; mx.example.net",
        "Diagnostic-Code: smtp; 550 5.1.1 No such user Injected: header",
    ):
        assert expected in fields, expected
    assert original.get_content_type() == "text/rfc822-headers"
    assert b"Subject: Your receipt" in raw and b"RET=HDRS leaves out" not in raw


def test_ret_full_returns_the_whole_message() -> None:
    raw = notice(ret_full=True)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    attached = list(message.iter_parts())[2]
    assert attached.get_content_type() == "message/rfc822"
    assert b"RET=HDRS leaves out" in raw


def test_our_own_bounce_parser_reads_it() -> None:
    report = parse_report(notice(ret_full=False))
    assert report is not None and report.kind == "bounce"
    (recipient,) = report.recipients
    assert (recipient.address, recipient.status, recipient.hard) == (
        "gone@example.net",
        "5.1.1",
        True,
    )
    expired = parse_report(
        notice(ret_full=False, status="5.4.7", diagnostic="451 4.4.1 timed out", expired=True)
    )
    assert expired is not None and expired.recipients[0].status == "5.4.7"


def test_notify() -> None:
    assert wants_failure_notice(None) and wants_failure_notice("")
    assert wants_failure_notice("FAILURE") and wants_failure_notice("success,failure,delay")
    assert not wants_failure_notice("NEVER")
    assert not wants_failure_notice("SUCCESS,DELAY")


def test_a_delay_notice() -> None:
    until = datetime(2026, 1, 7, tzinfo=UTC)
    raw = notice(
        ret_full=False,
        status="4.2.2",
        diagnostic="452 4.2.2 Mailbox full",
        action="delayed",
        will_retry_until=until,
    )
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(message["Subject"]).startswith("Delayed Mail (still being retried)")
    fields = list(message.iter_parts())[1].as_string()
    assert "Action: delayed" in fields and "Status: 4.2.2" in fields
    assert "Will-Retry-Until: Wed, 07 Jan 2026 00:00:00 +0000" in fields
    report = parse_report(raw)
    assert report is not None and report.recipients[0].action == "delayed"
    assert wants_delay_notice(None) and wants_delay_notice("FAILURE,DELAY")
    assert not wants_delay_notice("FAILURE") and not wants_delay_notice("NEVER")
