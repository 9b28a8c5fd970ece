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
_BOUNCE_SENDER = re.compile(
    r"mailer-daemon|post_?master|mail delivery|mail ?administrator|no-?reply", re.I
)
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
_PERMANENT = re.compile(
    r"permanent|fatal|could not be delivered|failed|giving up|rejected|did not reach|"
    r"undeliverable|unable to deliver|(was|were) not delivered|delivery errors?",
    re.I,
)
_DAEMON = re.compile(r"(^|[<\s])mailer-daemon@", re.IGNORECASE)
_SKIP_LOCAL = re.compile(r"^(mailer-daemon|noreply|no-reply)$", re.I)
_BOUNCE_BODY = re.compile(
    r"could not be delivered to|delivery to the following recipients? failed|"
    r"(was|were) not (able to be )?delivered|wasn't able to deliver|unable to deliver|"
    r"did not reach the following|following address(es)? (failed|had)|delivery has failed|"
    r"error delivering your mail|^\s*[45]\d\d[ -]",
    re.I | re.M,
)


def looks_like_bounce(headers: Mapping[str, str], body: str) -> bool:
    if headers.get("x-failed-recipients"):
        return True
    sender = headers.get("from", "")
    subject = headers.get("subject", "")
    if _DAEMON.search(sender):  # a mailer daemon writes nothing but delivery reports
        return True
    return (
        bool(_BOUNCE_SENDER.search(sender))
        and (bool(_BOUNCE_SUBJECT.search(subject)) or bool(_PERMANENT.search(body[:4000])))
    ) or bool(
        (_BOUNCE_SUBJECT.search(subject) or _BOUNCE_SENDER.search(sender))
        and (_BOUNCE_SENDER.search(body[:2000]) or _BOUNCE_BODY.search(body[:3000]))
    )


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


_SEPARATOR = re.compile(r"^[ \t]*[-=_*#~]{8,}[ \t]*$", re.MULTILINE)
_CODE = re.compile(r"(^|\s)[245]\d\d[ -]|\b[245]\.\d{1,3}\.\d{1,3}\b")
_FIELD_LINE = re.compile(r"^[ \t]*[A-Za-z][A-Za-z ()-]{0,30}:[ \t]", re.MULTILINE)
_SAYS_SOMETHING = re.compile(
    r"\b[245]\d\d\b|\b[245]\.\d{1,3}\.\d{1,3}\b|unknown|no such|invalid|refused|rejected|"
    r"not (found|exist|accept|allowed|permitted|deliver|reach|valid|local|known|available)|"
    r"denied|full|quota|failed|error|timeout|timed out|expired|exceed|blocked|disabled|"
    r"unreachable|unavailable",
    re.IGNORECASE,
)
_LINE_ADDRESS = re.compile(
    r"^[ \t>*-]*(?:[245]\d\d[ -])?(?:(?:recipient|address|rcpt to)\s*:?\s*)?<?"
    r"([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)>?"
    r"(?=[:;,.]|\s|$)",
    re.IGNORECASE | re.MULTILINE,
)


def _candidates(text: str, pattern: re.Pattern[str]) -> list[re.Match[str]]:
    return list(pattern.finditer(text))


def scan(body: str, headers: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(address, diagnostic, the line naming the address) for each failed recipient found
    in `body`.

    Failed recipients are listed one per paragraph, the address first on its line (qmail,
    Exim, Sendmail, Gmail, Exchange...); the remote server's answer follows on the same line or
    the next ones, or, when the address stands alone, in the next paragraph. Where no address
    starts a line, any address in the text is taken (webmail prose)."""
    marker = _ORIGINAL_MARKERS.search(body)
    text = body[: marker.start()] if marker else body
    own = _own_addresses(headers)
    sender = {m.group(1).lower() for m in _ADDRESS.finditer(headers.get("from", ""))}
    failed = [m.group(1).lower() for m in _ADDRESS.finditer(headers.get("x-failed-recipients", ""))]

    def wanted(address: str) -> bool:
        local = address.split("@", 1)[0]
        if failed:
            return address in failed
        return address not in own and not _SKIP_LOCAL.match(local)

    def wanted_line(address: str) -> bool:
        local = address.split("@", 1)[0]
        if failed:
            return address in failed
        return address not in sender and not _SKIP_LOCAL.match(local)

    matches = [
        m for m in _candidates(text, _LINE_ADDRESS) if wanted_line(m.group(1).lower().strip("."))
    ]
    if not matches:
        matches = [m for m in _candidates(text, _ADDRESS) if wanted(m.group(1).lower().strip("."))]
    found: dict[str, tuple[str, str]] = {}
    for index, match in enumerate(matches):
        address = match.group(1).lower().strip(".")
        end = next(
            (m.start() for m in matches[index + 1 :] if m.group(1).lower().strip(".") != address),
            len(text),
        )
        if any(m.group(1).lower().strip(".") == address for m in matches[:index]):
            continue
        tail = _SEPARATOR.sub("", text[match.end() : end])
        paragraphs = [p for p in re.split(r"\n[ \t]*\n", tail.lstrip(">:;,. \t")) if p.strip()]
        diagnostic = ""
        texts = [" ".join(p.split()) for p in paragraphs[:4]]
        coded = next((i for i, t in enumerate(texts) if _CODE.search(t)), None)
        if coded is None:  # no server reply quoted: up to the first sentence that says why
            coded = next(
                (
                    i
                    for i, t in enumerate(texts)
                    if _SAYS_SOMETHING.search(t) and len(t.split()) > 2
                ),
                0,
            )
        diagnostic = " ".join(texts[: coded + 1])
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        line = text[line_start : line_end if line_end >= 0 else len(text)]
        rest = text[match.end() : line_end if line_end >= 0 else len(text)].strip(">:;,. \t")
        if len(rest.split()) >= 2:  # "550 <a@b>... User unknown": the line is its own answer,
            # with its indented continuation lines; the lines after belong to others
            continuation = (
                re.match(r"(?:\n[ \t]+\S[^\n]*)*", text[line_end:]) if line_end >= 0 else None
            )
            diagnostic = " ".join((rest + (continuation.group(0) if continuation else "")).split())
        fields = _FIELD_LINE.findall(paragraphs[0]) if paragraphs else []
        listed = len(fields) >= 2  # the address among the message's details (Subject:, Date:)
        if listed or not (_CODE.search(diagnostic) or _SAYS_SOMETHING.search(diagnostic)):
            # the answer stands above the address (a list of the message's details follows)
            before = [" ".join(p.split()) for p in re.split(r"\n[ \t]*\n", text[:line_start])]
            quoted = [p for p in before if _CODE.search(p)]
            if quoted:
                diagnostic = quoted[-1]
        if not diagnostic:  # "Unknown user: someone@example.com"
            diagnostic = " ".join(text[line_start : match.start()].split()).rstrip(":")
        if not diagnostic:  # the reason on the line above the address (Lotus Notes)
            above = [x for x in text[:line_start].splitlines() if x.strip()]
            diagnostic = " ".join(above[-1].split()) if above else ""
        diagnostic = diagnostic[:1000]
        if address not in found or not found[address][0]:
            found[address] = (diagnostic, line)
    for address in failed:
        found.setdefault(address, ("", ""))
    return [(address, diagnostic, line) for address, (diagnostic, line) in found.items()]
