"""Bounces that are not RFC 3464 reports: find the failed recipients in the text.

qmail, Exim, old Sendmail, Exchange and many webmail providers write a paragraph per failed
recipient: the address (often in angle brackets, often followed by a colon) and the remote
server's answer on the following lines. `scan` takes the text before the returned copy of the
message, finds each address that is not the bounce's own sender or recipient, and keeps the
text that follows it up to the next address or blank line as its diagnostic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_ADDRESS = re.compile(
    r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)>?"
)
_ORIGINAL_MARKERS = re.compile(
    r"^\s*(-{2,}.{0,40}(copy of the message|original message|below this line|"
    r"headers? of (the )?(original|returned)|returned message|message follows|"
    r"undelivered message)|(original|returned) message (headers? )?follows|"
    r"content-type: message/rfc822|received: (from|by) )",
    re.IGNORECASE | re.MULTILINE,
)
_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery|mail ?administrator", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|failure notice|returned mail|delivery (status|failure|failed|notification|"
    r"has failed|problem)|mail delivery failed|could not be delivered|non.?delivery|"
    r"undelivered|delivery error|mail system error|failed delivery|rejected|bounce",
    re.IGNORECASE,
)
_AUTOREPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response)|out of (the )?office|away from|vacation|"
    r"auto:|autoreply|on leave|abwesenheit)",
    re.IGNORECASE,
)
_PERMANENT = re.compile(r"permanent|fatal|could not be delivered|failed|giving up|rejected", re.I)
_TEMPORARY = re.compile(r"temporar|delayed|will (continue|keep) (to )?try|deferr", re.I)
_SKIP_LOCAL = re.compile(r"^(mailer-daemon|postmaster|root|abuse|noreply|no-reply)$", re.I)


def looks_like_bounce(headers: Mapping[str, str], body: str) -> bool:
    if headers.get("x-failed-recipients"):
        return True
    sender = headers.get("from", "")
    subject = headers.get("subject", "")
    return (
        bool(_BOUNCE_SENDER.search(sender))
        and (bool(_BOUNCE_SUBJECT.search(subject)) or bool(_PERMANENT.search(body[:4000])))
    ) or bool(_BOUNCE_SUBJECT.search(subject) and _BOUNCE_SENDER.search(body[:2000]))


def is_autoreply(headers: Mapping[str, str]) -> bool:
    submitted = headers.get("auto-submitted", "").lower()
    if submitted.startswith("auto-replied"):
        return True
    if headers.get("x-autoreply") or headers.get("x-autorespond"):
        return True
    if headers.get("precedence", "").lower() == "auto_reply":
        return True
    return bool(_AUTOREPLY_SUBJECT.search(headers.get("subject", "")))


def _own_addresses(headers: Mapping[str, str]) -> set[str]:
    own: set[str] = set()
    for name in ("from", "to", "return-path", "reply-to", "sender"):
        own.update(m.group(1).lower() for m in _ADDRESS.finditer(headers.get(name, "")))
    return own


def scan(body: str, headers: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(address, diagnostic, status hint) for each failed recipient found in `body`."""
    marker = _ORIGINAL_MARKERS.search(body)
    text = body[: marker.start()] if marker else body
    own = _own_addresses(headers)
    failed = [m.group(1).lower() for m in _ADDRESS.finditer(headers.get("x-failed-recipients", ""))]
    hint = ""
    if _TEMPORARY.search(text):
        hint = "4.0.0"
    elif _PERMANENT.search(text):
        hint = "5.0.0"
    found: dict[str, str] = {}
    matches = list(_ADDRESS.finditer(text))
    for index, match in enumerate(matches):
        address = match.group(1).lower().strip(".")
        local = address.split("@", 1)[0]
        if address in found or (address in own and address not in failed):
            continue
        if _SKIP_LOCAL.match(local) and address not in failed:
            continue
        if failed and address not in failed:
            continue
        end = len(text)
        for later in matches[index + 1 :]:
            if later.group(1).lower() != address:
                end = later.start()
                break
        paragraph = text[match.end() : end]
        paragraph = re.split(r"\n[ \t]*\n(?![ \t])", paragraph.lstrip(">: \t\r\n"), maxsplit=1)[0]
        found[address] = " ".join(paragraph.split())[:1000]
    for address in failed:
        found.setdefault(address, "")
    return [(address, diagnostic, hint) for address, diagnostic in found.items()]
