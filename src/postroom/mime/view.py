"""A stored message parsed for display: bodies, parts, headers, List-Unsubscribe, defects.

Shapes follow Mailpit's API (Message, Attachment, ListUnsubscribe, /headers) so the HTTP layer
only renames fields. Nothing here raises for bad message bytes except `get_part`, which raises
NotFound for a part id the message does not have.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import urlsplit

from postroom.core.errors import NotFound
from postroom.core.types import AttachmentInfo, Checksums, Summary
from postroom.mime.checksums import checksums_of
from postroom.mime.decoding import header_text
from postroom.mime.header_warnings import HeaderWarning, header_warnings
from postroom.mime.htmltext import html_to_text
from postroom.mime.stream import part_chunks, shrink
from postroom.mime.summary import summarize, summary_of
from postroom.mime.tree import (
    Elided,
    Walk,
    charset_of,
    content_type_of,
    display_filename,
    find,
    parse,
    part_bytes,
    walk,
)

__all__ = [
    "ListUnsubscribe",
    "ParsedMessage",
    "Part",
    "canonical_header_name",
    "get_part",
    "get_part_stream",
    "html_to_text",
    "parse_list_unsubscribe",
    "parse_message",
    "parse_message_stream",
]

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_BRACKETED = re.compile(r"<([^<>]*)>")
_CHARSET_NAME = re.compile(r"[A-Za-z0-9._:+-]{1,40}")
_ONE_CLICK = "list-unsubscribe=one-click"


@dataclass(frozen=True, slots=True)
class ListUnsubscribe:
    """Mailpit's ListUnsubscribe: the headers, the usable links, and what is wrong with them."""

    header: str
    header_post: str
    links: tuple[str, ...]
    errors: str


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything the message view shows.

    `attachments` are the files offered for download, `inline` the parts shown inside the
    HTML (cid: images, Content-Disposition inline). `headers` keeps every header in order with
    its decoded value; `header_map` groups them by Mailpit's canonical name ("Message-Id").
    """

    summary: Summary
    text: str
    html: str
    attachments: tuple[AttachmentInfo, ...]
    inline: tuple[AttachmentInfo, ...]
    headers: tuple[tuple[str, str], ...]
    header_map: dict[str, list[str]]
    list_unsubscribe: ListUnsubscribe
    defects: tuple[str, ...]
    # part id -> digests of the attachments and inline parts, when asked for
    checksums: Mapping[str, Checksums] = field(default_factory=dict)
    # What is wrong with the From/To/Cc/Bcc/Reply-To/Sender/Date fields, where they are shown.
    header_warnings: tuple[HeaderWarning, ...] = ()

    def plain_text(self) -> str:
        """The text body; for a message with only an HTML body, that HTML as text (as
        Mailpit's `Text`: clients read links and codes from it)."""
        if self.text.strip() or not self.html:
            return self.text
        return html_to_text(self.html, links=True)


@dataclass(frozen=True, slots=True)
class Part:
    """One part's content for download. `content_type` suits a Content-Type response header."""

    content_type: str
    filename: str
    data: bytes


def canonical_header_name(name: str) -> str:
    """Go's canonical MIME header key, as Mailpit returns them: "message-id" → "Message-Id"."""
    if not name or any(ch not in _TOKEN_CHARS for ch in name):
        return name
    return "-".join(word[:1].upper() + word[1:].lower() for word in name.split("-"))


def _link_error(link: str) -> str | None:
    if any(ch.isspace() for ch in link):
        return f'"{link}" must not contain spaces'
    lowered = link.lower()
    if lowered.startswith("mailto:"):
        address = link[7:].split("?", 1)[0]
        local, at, domain = address.rpartition("@")
        if not at or not local or "." not in domain.strip("."):
            return f'"{link}" is not a valid mailto: link'
        return None
    if lowered.startswith(("http://", "https://")):
        try:
            parts = urlsplit(link)
        except ValueError:
            return f'"{link}" is not a valid http(s) link'
        if not parts.hostname:
            return f'"{link}" is not a valid http(s) link'
        return None
    return f'"{link}" is neither a mailto: nor an http(s) link'


def parse_list_unsubscribe(header: str, header_post: str) -> ListUnsubscribe:
    """Check List-Unsubscribe (RFC 2369) and List-Unsubscribe-Post (RFC 8058).

    `links` holds at most one mailto: and one http(s) link, the first valid of each.
    """
    header = header.strip()
    header_post = header_post.strip()
    errors: list[str] = []
    links: list[str] = []
    if not header:
        if header_post:
            errors.append("List-Unsubscribe-Post is set but there is no List-Unsubscribe header")
        return ListUnsubscribe(header, header_post, (), "; ".join(errors))
    matches = list(_BRACKETED.finditer(header))
    if not matches:
        errors.append("List-Unsubscribe has no link in angle brackets")
    previous_end = None
    have_mail = have_web = False
    for match in matches:
        if previous_end is not None and header[previous_end : match.start()].strip() != ",":
            errors.append("List-Unsubscribe links must be separated by commas")
        previous_end = match.end()
        link = match.group(1).strip()
        problem = _link_error(link)
        if problem is not None:
            errors.append(problem)
            continue
        is_mail = link.lower().startswith("mailto:")
        if is_mail and not have_mail:
            have_mail = True
            links.append(link)
        elif not is_mail and not have_web:
            have_web = True
            links.append(link)
    if header_post:
        if "".join(header_post.split()).lower() != _ONE_CLICK:
            errors.append('List-Unsubscribe-Post must be "List-Unsubscribe=One-Click"')
        if not any(link.lower().startswith("https://") for link in links):
            errors.append("one-click unsubscribe (RFC 8058) needs an https link")
    unique = list(dict.fromkeys(errors))
    return ListUnsubscribe(header, header_post, tuple(links), "; ".join(unique))


def _empty_view(raw: bytes, error: Exception) -> ParsedMessage:
    summary = summarize(raw)
    return ParsedMessage(
        summary=summary,
        text=summary.snippet,
        html="",
        attachments=(),
        inline=(),
        headers=(),
        header_map={},
        list_unsubscribe=ListUnsubscribe("", "", (), ""),
        defects=(*summary.defects, f"message: unparsable ({type(error).__name__})"),
    )


def parse_message(
    raw: bytes, elided: Mapping[str, Elided] | None = None, *, checksums: bool = False
) -> ParsedMessage:
    """Parse a stored message for display. Never raises, whatever `raw` holds.

    `elided`: the notes of mime/stream.py's `shrink` when `raw` is its small copy of a big
    message (see `parse_message_stream`). With `checksums`, the digests of every attachment
    and inline part (an elided part's come from its note)."""
    try:
        message = parse(raw)
    except Exception as error:
        return _empty_view(raw, error)
    try:
        walked = walk(message, elided)
    except Exception as error:
        walked = Walk(defects=[f"message: body structure unreadable ({type(error).__name__})"])
    try:
        summary = summary_of(message, walked)
        headers = tuple((name, header_text(value)) for name, value in message.items())
        warnings = header_warnings(message.items())
    except Exception as error:
        return _empty_view(raw, error)
    header_map: dict[str, list[str]] = {}
    for name, value in headers:
        header_map.setdefault(canonical_header_name(name), []).append(value)
    unsubscribe = header_map.get("List-Unsubscribe", [""])[0]
    unsubscribe_post = header_map.get("List-Unsubscribe-Post", [""])[0]
    digests = _checksums(message, walked, elided) if checksums else {}
    return ParsedMessage(
        summary=summary,
        text=walked.text,
        html=walked.html,
        attachments=tuple(f for f in walked.files if not f.inline),
        inline=tuple(f for f in walked.files if f.inline),
        headers=headers,
        header_map=header_map,
        list_unsubscribe=parse_list_unsubscribe(unsubscribe, unsubscribe_post),
        defects=summary.defects,
        checksums=digests,
        header_warnings=warnings,
    )


def _checksums(
    message: Message, walked: Walk, elided: Mapping[str, Elided] | None
) -> dict[str, Checksums]:
    noted = {note.part_id: note for note in (elided or {}).values()}
    found: dict[str, Checksums] = {}
    for info in walked.files:
        note = noted.get(info.part_id)
        if note is not None:
            if note.checksums is not None:
                found[info.part_id] = note.checksums
            continue
        try:
            part = find(message, info.part_id)
            if part is not None:
                found[info.part_id] = checksums_of([part_bytes(part)])
        except Exception:  # a part that cannot be read has no checksums
            continue
    return found


def _part_of(message: Message, part_id: str) -> Part:
    part = find(message, part_id)
    if part is None:
        raise NotFound(f"The message has no part {part_id!r}.")
    content_type = content_type_of(part)
    filename = display_filename(part, content_type)
    charset = charset_of(part)
    if content_type.startswith("text/") and charset and _CHARSET_NAME.fullmatch(charset):
        content_type = f"{content_type}; charset={charset}"
    return Part(content_type=content_type, filename=filename, data=part_bytes(part))


def get_part(raw: bytes, part_id: str) -> Part:
    """The content of part `part_id` (decoded; an attached message as its bytes).

    Raises NotFound when the message has no such part (or cannot be parsed at all).
    """
    try:
        message = parse(raw)
    except Exception as error:
        raise NotFound(f"The message has no part {part_id!r}: it cannot be parsed.") from error
    try:
        return _part_of(message, part_id)
    except NotFound:
        raise
    except Exception as error:
        raise NotFound(f"The message has no readable part {part_id!r}.") from error


def parse_message_stream(chunks: Iterable[bytes], *, checksums: bool = False) -> ParsedMessage:
    """`parse_message` for a big message read as chunks: its small copy is parsed (see
    mime/stream.py), so no part is held whole; text bodies are cut at tree.TEXT_KEEP."""
    shrunk = shrink(chunks, checksums=checksums)
    return parse_message(shrunk.data, shrunk.elided, checksums=checksums)


@dataclass(frozen=True, slots=True)
class StreamedPart:
    """`Part` for a big message: the content comes as chunks."""

    content_type: str
    filename: str
    chunks: Iterator[bytes]


def get_part_stream(chunks: Iterable[bytes], part_id: str) -> StreamedPart:
    """`get_part` for a big message read as chunks: the part's content is decoded as it is
    read. Only leaf parts (files and bodies) can be had this way; NotFound for others."""
    try:
        found = part_chunks(chunks, part_id)
    except Exception as error:
        raise NotFound(f"The message has no readable part {part_id!r}.") from error
    if found is None:
        raise NotFound(f"The message has no part {part_id!r} that holds content.")
    head, content = found
    content_type = head.content_type
    filename = display_filename(head.message, content_type)
    charset = charset_of(head.message)
    if content_type.startswith("text/") and charset and _CHARSET_NAME.fullmatch(charset):
        content_type = f"{content_type}; charset={charset}"
    return StreamedPart(content_type, filename, content)
