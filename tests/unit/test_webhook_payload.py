"""Webhook payloads (SES's event fields per event type, Postroom's reason), signatures (a
vector computed independently with hashlib), URL and type checks, the retry schedule."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from postroom.core.errors import InvalidInput
from postroom.core.events import Event
from postroom.core.webhooks import check_types, check_url, retry_delay
from postroom.events.payload import MailFacts, build_payload, parse_headers
from postroom.events.signing import new_secret, sign, signed_headers, verify

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MAIL = MailFacts("06MSG", T0, "app@example.com", ("a@example.net", "b@example.net"))


def event(kind: str, detail: dict[str, Any], recipient: str | None = "a@example.net") -> Event:
    return Event(7, "acme", kind, T0 + timedelta(seconds=2), "06MSG", recipient, detail)  # type: ignore[arg-type]


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"eventType":"Send"}'
    expected = hmac.new(b"whsec_k", b"1767225600." + body, hashlib.sha256).hexdigest()
    assert sign("whsec_k", 1767225600, body) == expected
    headers = signed_headers("whsec_k", 1767225600, body)
    assert headers == {"Postroom-Timestamp": "1767225600", "Postroom-Signature": f"v1={expected}"}
    assert verify("whsec_k", headers, body, now=1767225600 + 300)
    assert not verify("whsec_k", headers, body, now=1767225600 + 301)
    rotated = {**headers, "Postroom-Signature": f"v1=00, v1={expected}"}
    assert verify("whsec_k", rotated, body, now=1767225600)
    assert not verify("whsec_k", {**headers, "Postroom-Signature": "v0=" + expected}, body, 1.8e9)
    assert new_secret().startswith("whsec_") and new_secret() != new_secret()


def test_delivery_and_send() -> None:
    sent = build_payload(event("send", {"sender": "app@example.com"}), MAIL)
    assert sent == {
        "eventType": "Send",
        "type": "send",
        "eventId": 7,
        "project": "acme",
        "reason": None,
        "mail": {
            "timestamp": "2026-01-01T00:00:00.000Z",
            "messageId": "06MSG",
            "source": "app@example.com",
            "destination": ["a@example.net", "b@example.net"],
            "tags": {},
        },
        "send": {},
    }
    tagged = dataclasses.replace(MAIL, tags=("campaign:spring", "ses:configuration-set:m"))
    assert build_payload(event("send", {}), tagged)["mail"]["tags"] == {
        "campaign": ["spring"],
        "ses:configuration-set": ["m"],
    }
    detail = {"code": 250, "enhanced": "2.0.0", "text": "ok", "remote_ip": "192.0.2.9"}
    delivered = build_payload(event("delivery", detail), MAIL, reporting_mta="me.example")
    assert delivered["delivery"] == {
        "timestamp": "2026-01-01T00:00:02.000Z",
        "processingTimeMillis": 2000,
        "recipients": ["a@example.net"],
        "smtpResponse": "250 2.0.0 ok",
        "reportingMTA": "me.example",
        "remoteMtaIp": "192.0.2.9",
    }


def test_failures_delays_and_suppressions() -> None:
    deferred = build_payload(
        event(
            "deferred", {"code": 452, "enhanced": "4.2.2", "text": "full", "reason": "mailboxfull"}
        ),
        MAIL,
    )
    assert deferred["eventType"] == "DeliveryDelay" and deferred["reason"] == "mailboxfull"
    assert deferred["deliveryDelay"]["delayType"] == "MailboxFull"
    assert deferred["deliveryDelay"]["delayedRecipients"] == [
        {
            "emailAddress": "a@example.net",
            "status": "4.2.2",
            "diagnosticCode": "smtp; 452 4.2.2 full",
        }
    ]
    expired = build_payload(
        event("expired", {"code": 550, "reason": "expired", "hard": False}), MAIL
    )
    assert expired["eventType"] == "Bounce" and expired["type"] == "expired"
    assert (expired["bounce"]["bounceType"], expired["bounce"]["bounceSubType"]) == (
        "Transient",
        "General",
    )
    remote = build_payload(
        event(
            "bounce",
            {
                "reason": "mailboxfull",
                "hard": False,
                "bounceType": "Transient",
                "bounceSubType": "MailboxFull",
                "reporting_mta": "mx.example.net",
                "async": True,
            },
        ),
        MAIL,
        reporting_mta="me.example",
    )
    assert remote["bounce"]["reportingMTA"] == "dsn; mx.example.net"
    assert remote["bounce"]["bounceSubType"] == "MailboxFull"
    suppressed = build_payload(
        event("suppressed", {"reason": "complaint", "scope": "account"}), MAIL
    )
    assert suppressed["eventType"] == "Bounce" and suppressed["reason"] == "complaint"
    assert suppressed["bounce"]["bounceSubType"] == "OnAccountSuppressionList"
    assert suppressed["bounce"]["bouncedRecipients"][0]["emailAddress"] == "a@example.net"


def test_complaint_disabled_webhook_and_a_gone_message() -> None:
    complaint = build_payload(
        event(
            "complaint",
            {"feedback_type": "abuse", "user_agent": "Yahoo", "arrival_date": "Thu, 1 Jan 2026"},
        ),
        None,
    )
    assert complaint["reason"] == "feedback"
    assert complaint["complaint"]["complainedRecipients"] == [{"emailAddress": "a@example.net"}]
    assert complaint["complaint"]["complaintFeedbackType"] == "abuse"
    assert complaint["complaint"]["userAgent"] == "Yahoo"
    assert complaint["mail"]["messageId"] == "06MSG"  # the message is gone: what the event knows
    assert complaint["mail"]["destination"] == ["a@example.net"]
    off = build_payload(
        event("webhook_disabled", {"webhook": "W", "url": "https://x", "reason": "r"}, None), None
    )
    assert off["eventType"] == "WebhookDisabled" and "mail" not in off
    assert off["webhook"]["id"] == "W" and off["webhook"]["reason"] == "r"
    paused = build_payload(
        event("reputation", {"level": "paused", "reason": "bounce rate 12%", "sends": 200}, None),
        None,
    )
    assert paused["eventType"] == "Reputation" and "mail" not in paused
    assert paused["reputation"]["level"] == "paused" and paused["reputation"]["sends"] == 200
    assert paused["reputation"]["reason"] == "bounce rate 12%" and paused["reason"] is None


def test_headers_unfolded_and_capped() -> None:
    raw = b"Subject: a\r\n b\r\nTo: x@example.net\r\n\r\nbody"
    assert parse_headers(raw) == ((("Subject", "a b"), ("To", "x@example.net")), False)
    many = b"".join(b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n"
    fields, cut = parse_headers(many)
    assert len(fields) == 100 and cut
    assert parse_headers(b"Subject: unfinished")[1] is True


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "https://",
        "https://user:pw@example.com/",
        "http://127.0.0.1/x",
        "http://[::1]:8080/",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:9000/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "https://example.com:99999/",
        "https://exa mple.com/",
        "https://example.com/" + "x" * 2000,
        None,
        42,
    ],
)
def test_bad_urls_name_the_field(url: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_url(url, allow_private=False)
    assert caught.value.field == "url"


def test_urls_and_types() -> None:
    assert (
        check_url(" https://hooks.example.com/p?q=1 ", False) == "https://hooks.example.com/p?q=1"
    )
    assert check_url("http://127.0.0.1:8080/x", allow_private=True) == "http://127.0.0.1:8080/x"
    assert check_types(["send", "bounce", "send"]) == ("send", "bounce")
    for bad in ([], "send", ["nope"], [1]):
        with pytest.raises(InvalidInput) as caught:
            check_types(bad)
        assert caught.value.field == "types"


def test_retry_schedule_reaches_an_hour() -> None:
    assert retry_delay(1) == timedelta(seconds=10)
    assert [retry_delay(n) for n in (7, 8, 50)] == [timedelta(hours=1)] * 3
