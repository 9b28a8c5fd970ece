"""The parse problems of the header fields the message view shows (From, To, Cc, Bcc,
Reply-To, Sender, Date), so the view can say so where it shows them instead of showing a guess
as if it were the header: a Date that cannot be read is replaced by the time Postroom received
the message, and `To: <<not an address` would show as "To: not".

Address fields are read with the strict RFC 5322 parser of pipeline/headers.py (mailbox and
group syntax, comments, quoted strings, UTF-8 per RFC 6532); the Date with the same tolerant
parser as the stored summary, so a warning is shown exactly when the receive time is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from postroom.mime.decoding import parse_date, repair, unfold
from postroom.pipeline.headers import parse_address_list, parse_mailboxes

__all__ = ["HeaderWarning", "header_warnings", "raw_bytes"]

# Field (lower case) -> (name as shown, parser): From and Sender are mailbox lists, the
# others address lists (groups allowed).
_ADDRESS_FIELDS = {
    "from": ("From", parse_mailboxes),
    "sender": ("Sender", parse_mailboxes),
    "to": ("To", parse_address_list),
    "cc": ("Cc", parse_address_list),
    "bcc": ("Bcc", parse_address_list),
    "reply-to": ("Reply-To", parse_address_list),
}
SHOWN_MAX = 2000  # characters of a bad header value repeated in a warning


@dataclass(frozen=True, slots=True)
class HeaderWarning:
    """`header` as the view names it, `value` the field as written (unfolded, 8-bit decoded,
    cut at SHOWN_MAX), `text` a sentence saying what is wrong and what is shown instead."""

    header: str
    value: str
    text: str

    def as_json(self) -> dict[str, str]:
        return {"Header": self.header, "Value": self.value, "Warning": self.text}


def raw_bytes(value: str) -> bytes:
    """A compat32 header value back to the bytes on the wire (8-bit bytes are carried as
    surrogate escapes), unfolded."""
    try:
        data = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        data = value.encode("utf-8", "surrogateescape")
    return data.replace(b"\r\n", b"").replace(b"\n", b"").replace(b"\r", b"")


def _shown(value: str) -> str:
    text = repair(unfold(value)).strip()
    return text if len(text) <= SHOWN_MAX else text[:SHOWN_MAX] + "…"


def header_warnings(items: Iterable[tuple[str, str]]) -> tuple[HeaderWarning, ...]:
    """Warnings for the (name, raw compat32 value) header fields of a message. Never raises."""
    found: list[HeaderWarning] = []
    dates: list[str] = []
    for name, value in items:
        lowered = name.lower()
        if lowered == "date":
            dates.append(value)
            continue
        known = _ADDRESS_FIELDS.get(lowered)
        if known is None:
            continue
        title, parser = known
        try:
            parser(raw_bytes(value))
        except ValueError as exc:
            found.append(
                HeaderWarning(
                    title,
                    _shown(value),
                    f"{title} cannot be read as addresses ({exc}); it is shown as written.",
                )
            )
        except Exception:  # the tokenizer is strict, but never let a header break the view
            found.append(
                HeaderWarning(
                    title, _shown(value), f"{title} cannot be read as addresses; shown as written."
                )
            )
    if not dates:
        found.append(
            HeaderWarning(
                "Date",
                "",
                "The message has no Date header; the date shown is when Postroom received it.",
            )
        )
    elif parse_date(dates[0]) is None:
        found.append(
            HeaderWarning(
                "Date",
                _shown(dates[0]),
                "The Date header cannot be read as a date (RFC 5322 §3.3); the date shown is "
                "when Postroom received the message.",
            )
        )
    return tuple(found)
