"""The ingest-time summary of a message: what listing and search need, parsed once.

`summarize` runs for every incoming message, so it is written for speed (compat32 parse, no
structured header objects) and it never raises: whatever bytes arrive, a Summary comes back,
with what could not be read listed in `defects`.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.message import Message

from postroom.core.types import Address, Summary
from postroom.mime.decoding import (
    decode_bytes,
    header_text,
    parse_addresses,
    parse_date,
    strip_angle,
)
from postroom.mime.htmltext import html_to_text
from postroom.mime.tree import _MESSAGE_TYPES, Elided, Walk, find, parse, stored_payload, walk

SNIPPET_LENGTH = 250
SEARCH_TEXT_LIMIT = 64 * 1024
MAX_DEFECTS = 20
# Bounds on how much body is turned into snippet and search text (characters).
_TEXT_SOURCE_LIMIT = 4 * SEARCH_TEXT_LIMIT
_HTML_SOURCE_LIMIT = 16 * SEARCH_TEXT_LIMIT


def summarize(raw: bytes, elided: Mapping[str, Elided] | None = None) -> Summary:
    """Summary of a raw RFC 5322 message. Never raises, whatever `raw` holds.

    `elided`: the notes of mime/stream.py's `shrink` when `raw` is its small copy of a big
    message (see `summarize_stream`)."""
    try:
        message = parse(raw)
    except Exception as error:  # the feed parser is tolerant, but not proven bug-free
        return _unparsable(raw, error)
    try:
        walked = walk(message, elided)
    except Exception as error:
        walked = Walk(defects=[f"message: body structure unreadable ({type(error).__name__})"])
    try:
        return summary_of(message, walked)
    except Exception as error:
        return _unparsable(raw, error)


def summarize_built(raw: bytes, text: str) -> Summary | None:
    """The summary `summarize(raw)` gives, for a message Postroom wrote itself (the send APIs:
    api/mime_writer.py) whose whole body is one text/plain part, or text/plain and text/html
    alternatives, holding `text`: the header section is parsed (as summarize does) and the
    body's text is taken as given instead of being parsed and decoded back. None when that
    does not hold for sure (then parse the message). tests/unit/mime/test_summarize_built.py
    checks that both agree."""
    if not text.strip() or len(text) > _TEXT_SOURCE_LIMIT // 2:
        return None
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return None
    try:
        head = parse(raw[: end + 4])
        return summary_of(head, Walk(text=text))
    except Exception:
        return None


_CONTROLS = dict.fromkeys([*range(32), 127], " ")


def flatten(text: str) -> str:
    """Control characters dropped, whitespace collapsed to single spaces (bounded input)."""
    return " ".join(text[:_TEXT_SOURCE_LIMIT].translate(_CONTROLS).split())


def snippet_of(flat: str) -> str:
    if len(flat) <= SNIPPET_LENGTH:
        return flat
    return flat[:SNIPPET_LENGTH].rstrip() + "..."


def body_text(walked: Walk) -> str:
    """The plain text of the body: the text part, else the HTML part as text."""
    if walked.text.strip():
        return walked.text
    if walked.html:
        return html_to_text(walked.html[:_HTML_SOURCE_LIMIT], limit=SEARCH_TEXT_LIMIT)
    return ""


_ATTACHED_DEPTH = 3  # attached messages inside attached messages searched this deep


def attached_text(message: Message, walked: Walk, depth: int = 1) -> str:
    """The text of the messages attached to `message` (message/rfc822 parts: their subject,
    addresses and body, and theirs in turn), so that free text finds words in a forwarded
    message. Bounded by _ATTACHED_DEPTH and SEARCH_TEXT_LIMIT; an elided part (a big
    message's placeholder) has no text here."""
    pieces: list[str] = []
    size = 0
    for info in walked.files:
        if info.content_type not in _MESSAGE_TYPES or size >= SEARCH_TEXT_LIMIT:
            continue
        part = find(message, info.part_id)
        payload = None if part is None else stored_payload(part)
        if not isinstance(payload, list) or not payload or not isinstance(payload[0], Message):
            continue
        inner = payload[0]
        inner_walk = walk(inner)
        index = header_index(inner)
        names = [
            f"{a.name} {a.address}"
            for field in ("from", "to", "cc", "reply-to")
            for a in _addresses(index, field)
        ]
        text = "\n".join([header_text(_first(index, "subject")), *names, body_text(inner_walk)])
        if depth < _ATTACHED_DEPTH:
            text += "\n" + attached_text(inner, inner_walk, depth + 1)
        pieces.append(text)
        size += len(text)
    return "\n".join(pieces)


def header_index(message: Message) -> dict[str, list[str]]:
    """Raw header values by lower-cased name, in order (one pass instead of a scan per get)."""
    index: dict[str, list[str]] = {}
    for name, value in message.items():
        index.setdefault(name.lower(), []).append(value)
    return index


def _first(index: dict[str, list[str]], name: str) -> str | None:
    values = index.get(name)
    return values[0] if values else None


def _addresses(index: dict[str, list[str]], name: str) -> tuple[Address, ...]:
    values = index.get(name)
    if not values:
        return ()
    if len(values) == 1:
        return parse_addresses(values[0])
    return tuple(address for value in values for address in parse_addresses(value))


def header_tags(index: dict[str, list[str]]) -> tuple[str, ...]:
    tags: list[str] = []
    for value in index.get("x-tags", ()):
        tags.extend(tag.strip() for tag in header_text(value).split(","))
    return tuple(tag for tag in tags if tag)


def summary_of(message: Message, walked: Walk) -> Summary:
    """Build the summary from an already parsed tree and its walk (shared with the view)."""
    index = header_index(message)
    defects = list(walked.defects)
    if not index:
        defects.insert(0, "message: no headers")
    senders = _addresses(index, "from")
    raw_date = _first(index, "date")
    date = parse_date(raw_date)
    if raw_date and date is None:
        defects.append("message: unreadable Date header")
    flat = flatten(body_text(walked))
    searched = flat
    if any(info.content_type in _MESSAGE_TYPES for info in walked.files):
        searched = f"{flat} {flatten(attached_text(message, walked))}"
    return Summary(
        from_=senders[0] if senders else None,
        to=_addresses(index, "to"),
        cc=_addresses(index, "cc"),
        bcc=_addresses(index, "bcc"),
        reply_to=_addresses(index, "reply-to"),
        subject=header_text(_first(index, "subject")),
        message_id=strip_angle(header_text(_first(index, "message-id"))),
        date=date,
        snippet=snippet_of(flat),
        attachments=tuple(walked.files),
        header_tags=header_tags(index),
        search_text=searched[:SEARCH_TEXT_LIMIT].lower(),
        return_path=strip_angle(header_text(_first(index, "return-path"))),
        defects=tuple(defects[:MAX_DEFECTS]),
    )


def _unparsable(raw: bytes, error: Exception) -> Summary:
    flat = flatten(decode_bytes(raw[:_TEXT_SOURCE_LIMIT]))
    return Summary(
        from_=None,
        to=(),
        cc=(),
        bcc=(),
        reply_to=(),
        subject="",
        message_id="",
        date=None,
        snippet=snippet_of(flat),
        attachments=(),
        header_tags=(),
        search_text=flat[:SEARCH_TEXT_LIMIT].lower(),
        defects=(f"message: unparsable ({type(error).__name__})",),
    )
