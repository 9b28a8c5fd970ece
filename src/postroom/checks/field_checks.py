"""Sanity of the header fields every message needs (RFC 5322 §3.6): exactly one From with one
mailbox (or a Sender naming who sent it), one Date that can be read and is not in the future,
one well-formed Message-ID, address fields that can be read, no repeated single fields."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from postroom.checks.findings import Finding
from postroom.mime.decoding import parse_date, repair, unfold
from postroom.mime.header_warnings import SHOWN_MAX, HeaderWarning
from postroom.pipeline.headers import HeaderField, address_domain, parse_mailboxes

__all__ = ["FieldFacts", "check_fields"]

FUTURE_SLACK = timedelta(minutes=15)  # clocks disagree a little
OLD_AFTER = timedelta(days=1)
# Fields RFC 5322 §3.6 allows at most once.
_SINGLE = {
    "from": "From",
    "sender": "Sender",
    "reply-to": "Reply-To",
    "to": "To",
    "cc": "Cc",
    "bcc": "Bcc",
    "message-id": "Message-ID",
    "in-reply-to": "In-Reply-To",
    "references": "References",
    "subject": "Subject",
    "date": "Date",
}
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
# A date-time ends with its zone: +hhmm/-hhmm or an obsolete name (GMT, EST, Z...), then maybe
# a comment; Python reads a date without one as UTC, and so does Postroom.
_ZONE = re.compile(r"\d:\d\d(?::\d\d)?\s*(?:[+-]\d{4}|[A-Za-z]{1,5})\s*(?:\(.*\))?\s*$")
_MSG_ID = re.compile(rf"<{_DOT_ATOM}@(?:{_DOT_ATOM}|\[[\x21-\x5a\x5e-\x7e]*\])>")


@dataclass(frozen=True, slots=True)
class FieldFacts:
    """What the other checks need from the fields: the From domain DMARC judges ("" when the
    message has no single From domain)."""

    from_domain: str


def _text(value: bytes) -> str:
    text = repair(unfold(value.decode("ascii", "surrogateescape"))).strip()
    return text if len(text) <= SHOWN_MAX else text[:SHOWN_MAX] + "…"


def _values(fields: Sequence[HeaderField], name: str) -> list[bytes]:
    return [f.value for f in fields if f.name == name]


def _from(fields: Sequence[HeaderField], out: list[Finding]) -> str:
    froms = _values(fields, "from")
    if not froms:
        out.append(
            Finding(
                "fail",
                "from",
                "From",
                "The message has no From header; RFC 5322 requires exactly one, and receivers "
                "reject mail without it.",
            )
        )
        return ""
    if len(froms) > 1:
        out.append(
            Finding(
                "fail",
                "from",
                "From",
                f"The message has {len(froms)} From headers; RFC 5322 allows one, and Gmail "
                "rejects such mail (which one would DMARC judge?).",
            )
        )
        return ""
    try:
        mailboxes = parse_mailboxes(froms[0])
    except ValueError as exc:
        out.append(
            Finding(
                "fail",
                "from",
                "From",
                f"From cannot be read as an address ({exc}): {_text(froms[0])!r}. Receivers "
                "cannot tell who the message is from, and DMARC cannot be judged.",
            )
        )
        return ""
    domains = {address_domain(m).lower() for m in mailboxes}
    if len(mailboxes) == 1:
        out.append(Finding("pass", "from", "From", f"From names one mailbox: {mailboxes[0]}."))
    else:
        senders = _values(fields, "sender")
        listed = ", ".join(mailboxes)
        if not senders:
            out.append(
                Finding(
                    "fail",
                    "from",
                    "Sender",
                    f"From names {len(mailboxes)} mailboxes ({listed}), so a Sender header "
                    "naming the one who sent it is required (RFC 5322 §3.6.2); there is none.",
                )
            )
        else:
            out.append(
                Finding(
                    "info",
                    "from",
                    "From",
                    f"From names {len(mailboxes)} mailboxes ({listed}); Sender says who sent it.",
                )
            )
    for value in _values(fields, "sender")[:1]:
        try:
            if len(parse_mailboxes(value)) != 1:
                raise ValueError("more than one mailbox")
        except ValueError as exc:
            out.append(
                Finding(
                    "fail",
                    "from",
                    "Sender",
                    f"Sender must name exactly one mailbox ({exc}): {_text(value)!r}.",
                )
            )
    return domains.pop() if len(domains) == 1 else ""


def _date(fields: Sequence[HeaderField], received: datetime, out: list[Finding]) -> None:
    dates = _values(fields, "date")
    shown = "the date shown is when Postroom received the message"
    if not dates:
        out.append(
            Finding(
                "fail",
                "date",
                "Date",
                f"The message has no Date header, which RFC 5322 requires; {shown}.",
            )
        )
        return
    text = _text(dates[0])
    when = parse_date(dates[0].decode("ascii", "surrogateescape"))
    if when is None:
        out.append(
            Finding(
                "fail",
                "date",
                "Date",
                f"The Date header {text!r} cannot be read as a date (RFC 5322 §3.3); {shown}.",
            )
        )
        return
    if not _ZONE.search(text):
        out.append(
            Finding(
                "warn",
                "date",
                "Date",
                f"The Date header {text!r} has no time zone; it was read as UTC.",
            )
        )
    ahead = when - received
    behind = received - when
    if ahead > FUTURE_SLACK:
        out.append(
            Finding(
                "warn",
                "date",
                "Date",
                f"The Date ({when.isoformat()}) is {_span(ahead)} after Postroom received the "
                "message: a date in the future is a common spam sign, and lists sort it first.",
            )
        )
    elif behind > OLD_AFTER:
        out.append(
            Finding(
                "info",
                "date",
                "Date",
                f"The Date ({when.isoformat()}) is {_span(behind)} before Postroom received the "
                "message (a resent fixture, or a sender with a wrong clock?).",
            )
        )
    else:
        out.append(Finding("pass", "date", "Date", f"Date is {when.isoformat()}."))


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} hours"
    return f"{max(seconds // 60, 1)} minutes"


def _message_id(fields: Sequence[HeaderField], out: list[Finding]) -> None:
    ids = _values(fields, "message-id")
    if not ids:
        out.append(
            Finding(
                "fail",
                "message-id",
                "Message-ID",
                "The message has no Message-ID header; Gmail refuses mail without a valid one, "
                "and replies cannot refer to it.",
            )
        )
        return
    text = _text(ids[0])
    if not _MSG_ID.fullmatch(text):
        out.append(
            Finding(
                "warn",
                "message-id",
                "Message-ID",
                f"Message-ID {text!r} is not of the form <unique@domain> (RFC 5322 §3.6.4); "
                "some receivers refuse such mail.",
            )
        )
        return
    out.append(Finding("pass", "message-id", "Message-ID", f"Message-ID is {text}."))


def check_fields(
    fields: Sequence[HeaderField],
    received: datetime,
    warnings: Sequence[HeaderWarning],
    out: list[Finding],
) -> FieldFacts:
    """Append the findings about `fields` (split by pipeline/headers.py) to `out`; `received`
    is when Postroom received the message, `warnings` the view's parse warnings (the address
    fields that cannot be read are reported from them)."""
    from_domain = _from(fields, out)
    _date(fields, received, out)
    _message_id(fields, out)
    for warning in warnings:
        if warning.header in ("To", "Cc", "Bcc", "Reply-To"):
            out.append(
                Finding(
                    "warn",
                    "addresses",
                    warning.header,
                    f"{warning.header} cannot be read as addresses: {warning.value!r}. "
                    "Postroom shows it as written; other mail programs guess.",
                )
            )
    counts: dict[str, int] = {}
    for field in fields:
        if field.name in _SINGLE:
            counts[field.name] = counts.get(field.name, 0) + 1
    for name, count in counts.items():
        if count > 1 and name not in ("from", "date", "message-id"):  # reported above
            out.append(
                Finding(
                    "warn",
                    "structure",
                    _SINGLE[name],
                    f"{_SINGLE[name]} appears {count} times; RFC 5322 §3.6 allows it once, and "
                    "mail programs disagree on which one they show.",
                )
            )
        elif count > 1 and name in ("date", "message-id"):
            out.append(
                Finding(
                    "fail",
                    "structure",
                    _SINGLE[name],
                    f"{_SINGLE[name]} appears {count} times; RFC 5322 §3.6 allows exactly one.",
                )
            )
    if not any(counts.get(n) for n in ("to", "cc", "bcc")):
        out.append(
            Finding(
                "info",
                "addresses",
                "To",
                "The message has no To, Cc or Bcc header: its recipients are only in the "
                "envelope (mail programs show an empty To).",
            )
        )
    return FieldFacts(from_domain)
