"""Delivery status notifications (RFC 3464) that Postroom sends to a message's sender when a
recipient failed for good.

`build_dsn` writes the notice: a `multipart/report; report-type=delivery-status` with a
human-readable part, the `message/delivery-status` part (per-message fields: Reporting-MTA,
Original-Envelope-Id, Arrival-Date; per-recipient: Original-Recipient, Final-Recipient,
Action, Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date) and the original message: whole
(`message/rfc822`) when the sender asked with RET=FULL, else its header
(`text/rfc822-headers`). A notice of delay (Action: delayed, Will-Retry-Until) tells the
sender a recipient is still being retried. The notice is from the null sender (it is never
bounced itself) and carries `Auto-Submitted: auto-replied` (RFC 3834).

`wants_failure_notice` says whether a recipient's DSN parameters ask for one (RFC 3461:
NOTIFY=NEVER, or a NOTIFY list without FAILURE, asks for none).
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime

from postroom.core.ids import new_id

CRLF = "\r\n"


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    """One recipient of the notice."""

    recipient: str
    status: str  # enhanced status, e.g. 5.1.1
    diagnostic: str  # the reply, e.g. "550 5.1.1 No such user"
    remote_mta: str = ""  # host name of the server that answered ("" when none did)
    orcpt: str = ""  # RCPT ORCPT as given (addr-type;xtext)
    last_attempt: datetime | None = None
    expired: bool = False
    action: str = "failed"  # or "delayed": still being retried
    will_retry_until: datetime | None = None  # delayed: when retrying ends


def wants_delay_notice(notify: str | None) -> bool:
    """Whether RCPT NOTIFY allows a notice of delay (absent: the MTA may send one)."""
    if notify is None or not notify.strip():
        return True
    values = {v.strip().upper() for v in notify.split(",")}
    return "DELAY" in values and "NEVER" not in values


def wants_failure_notice(notify: str | None) -> bool:
    """Whether RCPT NOTIFY asks for a notice of failure (absent: yes)."""
    if notify is None or not notify.strip():
        return True
    values = {v.strip().upper() for v in notify.split(",")}
    return "FAILURE" in values and "NEVER" not in values


def _header_block(raw: bytes) -> bytes:
    """The header section of a message (up to the empty line), CRLF-ended."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
        return raw if end < 0 else raw[: end + 1].replace(b"\n", b"\r\n")
    return raw[: end + 2]


def _field(value: str) -> str:
    """A header field value on one line (no CR or LF may reach the notice's fields)."""
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def build_dsn(
    *,
    reporting_mta: str,
    sender: str,
    original: bytes,
    arrival: datetime,
    failed: list[FailedRecipient],
    ret_full: bool,
    envid: str = "",
    now: datetime,
    subject: str = "",
) -> bytes:
    """The notice for `failed` recipients of the `original` message from `sender`, CRLF
    line endings, ready to send."""
    delayed = all(item.action == "delayed" for item in failed)
    boundary = f"=_postroom-dsn-{new_id(now).lower()}"
    date = email.utils.format_datetime(now)
    message_id = f"<{new_id(now).lower()}.dsn@{reporting_mta}>"
    lines = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{_field(sender)}>",
        (
            "Subject: Delayed Mail (still being retried)"
            if delayed
            else "Subject: Undelivered Mail Returned to Sender"
        )
        + (f": {_field(subject)[:200]}" if subject.isascii() and subject else ""),
        f"Date: {date}",
        f"Message-ID: {message_id}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        f"This is the mail system at {reporting_mta}.",
        "",
        *(
            [
                "Your message could not be delivered yet to the addresses below. It is still",
                "being retried; you need not send it again.",
            ]
            if delayed
            else [
                "Your message could not be delivered to one or more recipients. It was not",
                "delivered to the addresses below, and will not be retried:",
            ]
        ),
        "",
    ]
    for item in failed:
        why = _field(item.diagnostic)
        if item.expired:
            why = f"delivery time expired; the last attempt got: {why}"
        lines.append(f"<{_field(item.recipient)}>: {why}")
    lines += [
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {reporting_mta}",
    ]
    if envid:
        lines.append(f"Original-Envelope-Id: {_field(envid)}")
    lines.append(f"Arrival-Date: {email.utils.format_datetime(arrival)}")
    for item in failed:
        lines.append("")
        if item.orcpt:
            lines.append(f"Original-Recipient: {_field(item.orcpt)}")
        lines += [
            f"Final-Recipient: rfc822; {_field(item.recipient)}",
            f"Action: {'delayed' if item.action == 'delayed' else 'failed'}",
            f"Status: {_field(item.status) or ('4.0.0' if item.action == 'delayed' else '5.0.0')}",
        ]
        if item.remote_mta:
            lines.append(f"Remote-MTA: dns; {_field(item.remote_mta)}")
        if item.expired:  # the last temporary reply is in the text part, not read as the cause
            lines.append("Diagnostic-Code: smtp; 550 5.4.7 Delivery time expired")
        elif item.diagnostic:
            lines.append(f"Diagnostic-Code: smtp; {_field(item.diagnostic)}")
        if item.last_attempt is not None:
            lines.append(f"Last-Attempt-Date: {email.utils.format_datetime(item.last_attempt)}")
        if item.will_retry_until is not None:
            until = email.utils.format_datetime(item.will_retry_until)
            lines.append(f"Will-Retry-Until: {until}")
    lines += ["", f"--{boundary}"]
    if ret_full:
        lines += ["Content-Type: message/rfc822", "", ""]
        attached = original if original.endswith(b"\r\n") else original + b"\r\n"
    else:
        lines += ["Content-Type: text/rfc822-headers", "", ""]
        attached = _header_block(original)
    head = CRLF.join(lines).encode("utf-8")
    return head + attached + f"{CRLF}--{boundary}--{CRLF}".encode("ascii")
