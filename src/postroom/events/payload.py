"""The JSON a webhook receives for one event: SES's event fields, plus Postroom's.

    {"eventType": "Bounce", "type": "bounce", "eventId": 42, "project": "acme",
     "reason": "userunknown", "metadata": {"user_id": "42"},
     "mail": {"timestamp", "messageId", "source", "destination", "tags",
              "headersTruncated", "headers" and "commonHeaders" when the webhook asks for
              headers},
     "bounce": {"bounceType", "bounceSubType", "bouncedRecipients": [{"emailAddress",
                "action", "status", "diagnosticCode"}], "timestamp", "feedbackId",
                "reportingMTA", "remoteMtaIp"}}

`mail.tags` are the message's tags as SES shows them (core/config_sets.mail_tags):
`{"campaign": ["spring"], "ses:configuration-set": ["marketing"]}` for the tags
`campaign:spring` (an SES EmailTag, or a native tag) and `ses:configuration-set:marketing` (sent
with that configuration set). `metadata` (the send API's key/value pairs) is there when the
message was sent with some.
`eventType` is SES's name (Send, Delivery, DeliveryDelay, Bounce, Complaint, Reject, and
Postroom's own Cancelled and WebhookDisabled); `type` is the event log's type (an `expired`
or `suppressed` event is an SES Bounce); `reason` is Postroom's reason (the bounce
classifier's taxonomy for failures and delays, the suppression list's reason for a
suppressed recipient, `feedback` for a complaint), null when there is none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from postroom.bounces.ses_types import bounce_type, suppressed_type
from postroom.core.config_sets import mail_tags
from postroom.core.events import Event

# Header fields of the message a payload carries at most, and characters of each value.
MAX_HEADERS = 100
MAX_HEADER_VALUE = 2048

SES_EVENT_TYPES = {
    "send": "Send",
    "delivery": "Delivery",
    "deferred": "DeliveryDelay",
    "bounce": "Bounce",
    "expired": "Bounce",
    "suppressed": "Bounce",
    "complaint": "Complaint",
    "reject": "Reject",
    "cancelled": "Cancelled",
    "webhook_disabled": "WebhookDisabled",
    "reputation": "Reputation",
}


@dataclass(frozen=True, slots=True)
class MailFacts:
    """What a payload's `mail` says of the message (read from the message store)."""

    message_id: str
    timestamp: datetime
    source: str
    destination: tuple[str, ...]
    headers: tuple[tuple[str, str], ...] = ()
    headers_truncated: bool = False
    common: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)  # the send API's, if any
    tags: tuple[str, ...] = ()  # the message's tags


def iso(when: datetime) -> str:
    """SES's time format: UTC with milliseconds and Z."""
    text = when.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_headers(raw: bytes) -> tuple[tuple[tuple[str, str], ...], bool]:
    """The header fields of a message's first bytes (unfolded), and whether some were left
    out (more than MAX_HEADERS, a value cut, or the header section longer than `raw`)."""
    end = raw.find(b"\r\n\r\n")
    cut = end < 0
    section = raw if cut else raw[:end]
    fields: list[tuple[str, str]] = []
    for line in section.decode("utf-8", "replace").split("\r\n"):
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip())
        elif ":" in line:
            name, _, value = line.partition(":")
            fields.append((name.strip(), value.strip()))
    if len(fields) > MAX_HEADERS:
        fields, cut = fields[:MAX_HEADERS], True
    if any(len(v) > MAX_HEADER_VALUE for _, v in fields):
        fields = [(n, v[:MAX_HEADER_VALUE]) for n, v in fields]
        cut = True
    return tuple(fields), cut


def _mail(event: Event, mail: MailFacts | None, headers: bool) -> dict[str, Any]:
    if mail is None:
        # The message is gone (retention) or the event has none: what the event knows.
        return {
            "timestamp": iso(event.time),
            "messageId": event.message_id,
            "source": event.detail.get("sender"),
            "destination": [event.recipient] if event.recipient else [],
        }
    out: dict[str, Any] = {
        "timestamp": iso(mail.timestamp),
        "messageId": mail.message_id,
        "source": mail.source,
        "destination": list(mail.destination),
        "tags": mail_tags(mail.tags),
    }
    if headers:
        out["headersTruncated"] = mail.headers_truncated
        out["headers"] = [{"name": n, "value": v} for n, v in mail.headers]
        out["commonHeaders"] = dict(mail.common)
    return out


def _smtp_response(detail: Mapping[str, Any]) -> str:
    parts = [str(detail.get(k)) for k in ("code", "enhanced", "text") if detail.get(k)]
    return " ".join(parts)


def _diagnostic(detail: Mapping[str, Any]) -> str | None:
    reply = _smtp_response(detail)
    return f"smtp; {reply}" if reply else None


def _mta(name: object) -> str | None:
    return f"dsn; {name}" if isinstance(name, str) and name else None


def _delay_type(detail: Mapping[str, Any]) -> str:
    reason = detail.get("reason")
    if detail.get("local"):
        return "TransientCommunicationFailure"
    if reason == "mailboxfull":
        return "MailboxFull"
    if reason == "spamdetected":
        return "SpamDetected"
    if isinstance(detail.get("code"), int) and 400 <= detail["code"] < 500:
        return "RecipientServerError"
    return "General"


def build_payload(
    event: Event,
    mail: MailFacts | None,
    *,
    headers: bool = False,
    reporting_mta: str = "",
) -> dict[str, Any]:
    """The payload of `event` (`mail`: its message, None when gone). `headers`: include the
    message's header fields; `reporting_mta`: this server's name, for results the delivery
    worker got itself."""
    detail = event.detail
    kind = event.type
    stamp = iso(event.time)
    recipient = event.recipient
    reason = detail.get("reason")
    if kind == "complaint":
        reason = "feedback"
    out: dict[str, Any] = {
        "eventType": SES_EVENT_TYPES.get(kind, kind),
        "type": kind,
        "eventId": event.id,
        "project": event.project,
        "reason": reason if isinstance(reason, str) else None,
    }
    if kind == "webhook_disabled":
        out["webhook"] = {
            "id": detail.get("webhook"),
            "url": detail.get("url"),
            "reason": detail.get("reason"),
            "timestamp": stamp,
        }
        out["reason"] = None
        return out
    if kind == "reputation":  # the project's, no message: level, rates, counts, why
        out["reputation"] = {**dict(detail), "timestamp": stamp}
        out["reason"] = None
        return out
    out["mail"] = _mail(event, mail, headers)
    if mail is not None and mail.metadata:
        out["metadata"] = dict(mail.metadata)
    ours = detail.get("reporting_mta") or (None if detail.get("async") else reporting_mta)
    if kind == "send":
        out["send"] = {}
    elif kind == "delivery":
        processing = None
        if mail is not None:
            processing = max(0, round((event.time - mail.timestamp).total_seconds() * 1000))
        out["delivery"] = {
            "timestamp": stamp,
            "processingTimeMillis": processing,
            "recipients": [recipient] if recipient else [],
            "smtpResponse": _smtp_response(detail),
            "reportingMTA": ours or None,
            "remoteMtaIp": detail.get("remote_ip") or None,
        }
    elif kind == "deferred":
        out["deliveryDelay"] = {
            "timestamp": stamp,
            "delayType": _delay_type(detail),
            "expirationTime": detail.get("expires"),
            "nextAttempt": detail.get("next_attempt"),
            "delayedRecipients": [
                {
                    "emailAddress": recipient,
                    "status": detail.get("enhanced"),
                    "diagnosticCode": _diagnostic(detail),
                }
            ],
            "reportingMTA": ours or None,
            "remoteMtaIp": detail.get("remote_ip") or None,
        }
    elif kind in ("bounce", "expired", "suppressed"):
        if kind == "suppressed":
            bounce_kind, sub = suppressed_type(str(detail.get("scope", "project")))
            recipients: list[dict[str, Any]] = [
                {
                    "emailAddress": recipient,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "Postroom suppressed this recipient: it is on the "
                    f"{detail.get('scope', 'project')} suppression list "
                    f"({detail.get('reason', 'manual')})",
                }
            ]
        else:
            given_kind, given_sub = detail.get("bounceType"), detail.get("bounceSubType")
            if isinstance(given_kind, str) and isinstance(given_sub, str):
                bounce_kind, sub = given_kind, given_sub
            else:
                bounce_kind, sub = bounce_type(str(reason or ""), bool(detail.get("hard")))
            recipients = [
                {
                    "emailAddress": recipient,
                    "action": "failed",
                    "status": detail.get("enhanced"),
                    "diagnosticCode": _diagnostic(detail),
                }
            ]
        out["bounce"] = {
            "bounceType": bounce_kind,
            "bounceSubType": sub,
            "bouncedRecipients": recipients,
            "timestamp": stamp,
            "feedbackId": f"postroom-{event.id}",
            "reportingMTA": _mta(ours),
            "remoteMtaIp": detail.get("remote_ip") or None,
        }
    elif kind == "complaint":
        out["complaint"] = {
            "complainedRecipients": [{"emailAddress": recipient}] if recipient else [],
            "timestamp": stamp,
            "feedbackId": f"postroom-{event.id}",
            "complaintFeedbackType": detail.get("feedback_type"),
            "userAgent": detail.get("user_agent") or None,
            "arrivalDate": detail.get("arrival_date") or None,
        }
    elif kind == "reject":
        out["reject"] = {"reason": detail.get("text") or reason or "Rejected"}
    elif kind == "cancelled":
        out["cancelled"] = {"timestamp": stamp, "recipients": [recipient] if recipient else []}
    return out


def common_headers(summary: Any, message_id_header: str) -> dict[str, Any]:
    """SES's `commonHeaders` of a stored message's summary."""

    def addresses(items: Sequence[Any]) -> list[str]:
        return [f"{a.name} <{a.address}>" if a.name else a.address for a in items]

    sender = summary.from_
    return {
        "from": addresses([sender]) if sender is not None else [],
        "to": addresses(summary.to),
        "subject": summary.subject,
        "messageId": message_id_header,
    }
