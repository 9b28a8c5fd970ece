"""Parse raw bytes into the `email` package's tree and walk it the way Mailpit shows messages.

Parsing uses the compat32 policy with header values left raw: the modern policy
(`email.policy.default`) builds a structured header object for every header it touches and is
roughly 25 times slower for a typical message (see bench/mime_summary.py), which matters on the
ingest path. Header decoding is done by `postroom.mime.decoding` instead.

Part ids are dotted paths like Mailpit's: the children of a multipart root are "1", "2", ...;
their children "1.1", "1.2", ...; a message that is not multipart has the single part "1".
Attached messages (message/rfc822) are leaves: their own parts are not numbered.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32
from urllib.parse import unquote

from postroom.core.types import AttachmentInfo, Checksums
from postroom.mime.decoding import decode_bytes, header_text, repair, strip_angle

MAX_DEPTH = 32
MAX_PARTS = 500
# Text bodies of big messages (mime/stream.py) are cut after this many decoded bytes.
TEXT_KEEP = 2 * 1024 * 1024
ELIDED_PREFIX = "postroom-elided-"


@dataclass(slots=True)
class Elided:
    """What mime/stream.py's `shrink` noted about a leaf body it replaced by a placeholder."""

    part_id: str
    size: int  # decoded size (for an attached message: its size in bytes)
    text: bytes | None  # the decoded start of a text body (TEXT_KEEP at most); else None
    cut: bool  # `text` is not the whole body
    invalid_base64: bool
    subject: str = ""  # an attached message's Subject
    checksums: Checksums | None = None  # of the content, when `shrink` was asked for them


class _RawPolicy(Compat32):
    """compat32 that hands header values back exactly as stored (str, surrogate-escaped)."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


RAW_POLICY = _RawPolicy(linesep="\r\n")
_PARSER = BytesParser(policy=RAW_POLICY)

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_B64 = bytes(b for b in range(256) if b not in _B64_ALPHABET)
_WHITESPACE = b" \t\r\n\x0b\x0c"
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9._:-]{1,40})""", re.I
)
_CID_REFERENCE = re.compile(r"""cid:([^"'\s)>]+)""", re.IGNORECASE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def parse(raw: bytes) -> Message:
    """The message tree. The feed parser is tolerant; callers still guard against its bugs."""
    return _parse_simple(raw) or _PARSER.parsebytes(raw)


# A header line as the feed parser recognises one (its headerRE), without leading "From ".
_HEADER_NAME = re.compile(r"[\041-\071\073-\176]+:")
_COMPOUND_TYPE = re.compile(r"\s*(multipart|message)\s*/", re.IGNORECASE)


def _parse_simple(raw: bytes) -> Message | None:
    """The tree the feed parser builds, for the common simple message; None for any other.

    Simple: CRLF line endings throughout the header block, which ends at the first empty line;
    every header line is `Name: value` or a folded continuation; no Unix "From " line; and the
    content type is neither multipart/* nor message/*. The feed parser then produces one
    Message with these headers and the rest as its payload, and no defects; building that
    directly is about five times faster (ingest parses every message). Anything else, however
    slightly off, goes to the feed parser, so its tolerance and its defects stay as they are;
    tests/unit/mime/test_mime_fastpath.py compares both on every fixture and corpus message.
    """
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return None
    text = raw.decode("ascii", "surrogateescape")
    head = text[:end]
    lines = head.split("\r\n")
    if len(head.splitlines()) != len(lines):
        return None  # other line breaks (bare CR or LF, form feed, ...) in the header block
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not headers:
                return None
            name, value = headers[-1]
            headers[-1] = (name, value + "\r\n" + line)
            continue
        if not _HEADER_NAME.match(line):
            return None
        name, _, value = line.partition(":")
        headers.append((name, value.lstrip(" \t")))
    for name, value in headers:
        if name.lower() == "content-type":  # the first one counts, as in Message.get
            if _COMPOUND_TYPE.match(value):
                return None
            break
    message = Message(policy=RAW_POLICY)
    for name, value in headers:
        message.set_raw(name, value)
    message.set_payload(text[end + 4 :])
    return message


def _encode(text: str) -> bytes:
    try:
        return text.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def _write_body(message: Message, out: list[bytes], depth: int) -> None:
    payload = stored_payload(message)
    if isinstance(payload, str):
        out.append(_encode(payload))
    elif isinstance(payload, bytes):
        out.append(payload)
    elif isinstance(payload, list) and depth < 4 * MAX_DEPTH:
        parts = [part for part in payload if isinstance(part, Message)]
        if content_type_of(message).startswith("multipart/"):
            boundary = _encode(message.get_boundary() or "")
            if message.preamble is not None:
                out.append(_encode(message.preamble) + b"\r\n")
            for part in parts:
                out.append(b"--" + boundary + b"\r\n")
                _write_message(part, out, depth + 1)
                out.append(b"\r\n")
            out.append(b"--" + boundary + b"--\r\n")
            if message.epilogue:
                out.append(_encode(message.epilogue))
        else:  # message/rfc822 holds one message; message/delivery-status header blocks
            for index, part in enumerate(parts):
                if index:
                    out.append(b"\r\n")
                _write_message(part, out, depth + 1)


def _write_message(message: Message, out: list[bytes], depth: int) -> None:
    for name, value in message.items():
        out.append(_encode(f"{name}: {value}\r\n"))
    out.append(b"\r\n")
    _write_body(message, out, depth)


def serialize(message: Message) -> bytes:
    """A (sub)message as bytes from the parsed tree, headers as received.

    Written by hand rather than with email.generator, which re-decodes payloads and fails on
    some hostile ones; line endings inside bodies are kept as received.
    """
    out: list[bytes] = []
    _write_message(message, out, 0)
    return b"".join(out)


def stored_payload(part: Message) -> object:
    """The payload as the parser stored it: a list of parts, or a (surrogate-escaped) str.

    Message.get_payload() re-decodes 8-bit text with the declared charset, which is lossy and
    raises for some hostile charset parameters; get_payload(decode=True) applies its own,
    stricter transfer-encoding handling. Neither suits display of arbitrary mail.
    """
    return getattr(part, "_payload", None)


def _raw_payload(part: Message) -> bytes:
    payload = stored_payload(part)
    if isinstance(payload, bytes):
        return payload
    if not isinstance(payload, str):
        return b""
    try:
        return payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return payload.encode("utf-8", "surrogateescape")


def transfer_encoding(part: Message) -> str:
    return header_text(part.get("Content-Transfer-Encoding")).lower()


def decode_payload(part: Message, defects: list[str] | None = None, part_id: str = "") -> bytes:
    """The bytes of a leaf part after undoing its Content-Transfer-Encoding.

    Base64 is decoded leniently: characters outside the alphabet are skipped and a truncated
    final group is dropped (noted as a defect) instead of failing.
    """
    data = _raw_payload(part)
    encoding = transfer_encoding(part)
    if encoding == "base64":
        compact = data.translate(None, _WHITESPACE)
        clean = compact.translate(None, _NOT_B64)
        if len(clean) % 4 == 1:
            clean = clean[:-1]
        if defects is not None and clean != compact.rstrip(b"="):
            defects.append(f"{part_id or 'message'}: invalid base64 data")
        return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    return data


def meta_charset(html: bytes) -> str | None:
    """The charset an HTML document declares in a <meta> tag near its start, if any."""
    match = _META_CHARSET.search(html, 0, 4096)
    return match.group(1).decode("ascii") if match else None


def charset_of(part: Message) -> str | None:
    try:
        charset = part.get_content_charset()
    except Exception:  # hostile RFC 2231 parameters
        return None
    return charset


def content_type_of(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def disposition_of(part: Message) -> str:
    value = part.get("Content-Disposition")
    if not value:
        return ""
    return repair(value).split(";", 1)[0].strip().lower()


def _clean_filename(name: str) -> str:
    name = header_text(name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _UNSAFE_NAME.sub("_", name).strip(" .")[:255]


def filename_of(part: Message) -> str:
    """The part's file name: RFC 2231 and RFC 2047 decoded, without any directory."""
    try:
        name = part.get_filename()
    except Exception:
        return ""
    return _clean_filename(name) if name else ""


def message_filename(part: Message) -> str:
    """A name for an attached message: its own file name, else its subject + .eml."""
    named = filename_of(part)
    if named:
        return named
    payload = stored_payload(part)
    subject = ""
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        subject = _UNSAFE_NAME.sub(" ", header_text(payload[0].get("Subject"))).strip()[:100]
    return f"{subject or 'message'}.eml"


def display_filename(part: Message, content_type: str) -> str:
    """The name shown for a part: attached messages get a .eml name even without one."""
    if content_type in _MESSAGE_TYPES:
        return message_filename(part)
    return filename_of(part)


def part_bytes(part: Message) -> bytes:
    """What a download of the part returns: decoded data, or the attached message's bytes."""
    payload = stored_payload(part)
    if isinstance(payload, list):
        if len(payload) == 1 and isinstance(payload[0], Message):
            return serialize(payload[0])
        out: list[bytes] = []
        _write_body(part, out, 0)
        return b"".join(out)
    return decode_payload(part)


def defect_text(defect: object) -> str:
    name = type(defect).__name__.removesuffix("Defect")
    return _CAMEL.sub(" ", name).lower()


def is_container(part: Message) -> bool:
    return part.is_multipart() and content_type_of(part).startswith("multipart/")


def find(root: Message, part_id: str) -> Message | None:
    """The part with this dotted id, or None."""
    steps = part_id.split(".")
    if not all(step.isdigit() and step.isascii() for step in steps):
        return None
    if not is_container(root):
        return root if steps == ["1"] else None
    current = root
    for step in steps:
        if not is_container(current):
            return None
        children = stored_payload(current)
        index = int(step)
        if not isinstance(children, list) or not 1 <= index <= len(children):
            return None
        child = children[index - 1]
        if not isinstance(child, Message):
            return None
        current = child
    return current


@dataclass(slots=True)
class _Found:
    part_id: str
    filename: str
    content_type: str
    content_id: str
    disposition: str
    in_related: bool
    size: int


@dataclass(slots=True)
class Walk:
    """The display view of a message tree: bodies, files (attachments and inline), defects."""

    text: str = ""
    html: str = ""
    files: list[AttachmentInfo] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


class _Walker:
    def __init__(self, elided: Mapping[str, Elided] | None = None) -> None:
        self.elided = elided or {}
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.found: list[_Found] = []
        self.defects: list[str] = []
        self.visited = 0

    def note_defects(self, part: Message, part_id: str) -> None:
        for defect in getattr(part, "defects", ()):
            self.defects.append(f"{part_id or 'message'}: {defect_text(defect)}")

    def elided_of(self, part: object) -> Elided | None:
        """The notes on a body that mime/stream.py left out, if `part` holds its placeholder."""
        if not self.elided or not isinstance(part, Message):
            return None
        payload = stored_payload(part)
        if isinstance(payload, str) and payload.startswith(ELIDED_PREFIX):
            return self.elided.get(payload.strip())
        return None

    def note_elided(self, elided: Elided, part_id: str) -> None:
        if elided.invalid_base64:
            self.defects.append(f"{part_id}: invalid base64 data")
        if elided.cut:
            self.defects.append(f"{part_id}: body longer than {TEXT_KEEP} bytes, cut for display")

    def message_size(self, part: Message, part_id: str) -> int:
        try:
            return len(part_bytes(part))
        except Exception as error:  # last line of defence: hostile trees must not stop the walk
            self.defects.append(f"{part_id}: attached message unreadable ({type(error).__name__})")
            return 0

    def visit(
        self, part: Message, part_id: str, depth: int, alternative: bool, related: bool
    ) -> None:
        self.visited += 1
        if self.visited > MAX_PARTS:
            if self.visited == MAX_PARTS + 1:
                self.defects.append(f"message: more than {MAX_PARTS} parts, the rest ignored")
            return
        self.note_defects(part, part_id)
        ctype = content_type_of(part)
        if is_container(part):
            if depth >= MAX_DEPTH:
                self.defects.append(f"{part_id or 'message'}: nested too deeply, ignored")
                return
            children = stored_payload(part)
            subtype = ctype.partition("/")[2]
            if not isinstance(children, list):
                return
            for index, child in enumerate(children, 1):
                if isinstance(child, Message):
                    self.visit(
                        child,
                        f"{part_id}.{index}" if part_id else str(index),
                        depth + 1,
                        alternative or subtype == "alternative",
                        related or subtype == "related",
                    )
            return
        own_id = part_id or "1"
        if part.is_multipart():  # message/rfc822 and friends: an attached message
            payload = stored_payload(part)
            inner = self.elided_of(payload[0]) if isinstance(payload, list) and payload else None
            if inner is not None:
                subject = _UNSAFE_NAME.sub(" ", inner.subject).strip()[:100]
                self.found.append(
                    _Found(
                        part_id=own_id,
                        filename=filename_of(part) or f"{subject or 'message'}.eml",
                        content_type=ctype,
                        content_id=strip_angle(header_text(part.get("Content-ID"))),
                        disposition="attachment",
                        in_related=False,
                        size=inner.size,
                    )
                )
                return
            self.found.append(
                _Found(
                    part_id=own_id,
                    filename=display_filename(part, ctype),
                    content_type=ctype,
                    content_id=strip_angle(header_text(part.get("Content-ID"))),
                    disposition="attachment",
                    in_related=False,
                    size=self.message_size(part, own_id),
                )
            )
            return
        disposition = disposition_of(part)
        filename = filename_of(part)
        if ctype.startswith("multipart/"):
            # A multipart whose boundary is missing or never appears: show its text.
            ctype = "text/plain"
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            bodies = self.texts if ctype == "text/plain" else self.htmls
            if not bodies or not alternative:
                elided = self.elided_of(part)
                if elided is not None and elided.text is not None:
                    data = elided.text
                    self.note_elided(elided, own_id)
                else:
                    data = decode_payload(part, self.defects, own_id)
                charset = charset_of(part)
                if charset is None and ctype == "text/html":
                    charset = meta_charset(data)
                bodies.append(decode_bytes(data, charset))
            return
        if ctype in _MESSAGE_TYPES:
            filename = message_filename(part)
        elided = self.elided_of(part)
        if elided is not None:
            self.note_elided(elided, own_id)
            size = elided.size
        else:
            size = len(decode_payload(part, self.defects, own_id))
        self.found.append(
            _Found(
                part_id=own_id,
                filename=filename,
                content_type=ctype,
                content_id=strip_angle(header_text(part.get("Content-ID"))),
                disposition=disposition,
                in_related=related,
                size=size,
            )
        )


def walk(root: Message, elided: Mapping[str, Elided] | None = None) -> Walk:
    """`elided`: the notes of mime/stream.py's `shrink` when `root` is its small copy."""
    walker = _Walker(elided)
    walker.visit(root, "", 0, False, False)
    html = "\n".join(walker.htmls)
    referenced = {unquote(m).lower() for m in _CID_REFERENCE.findall(html)} if html else set()
    files: list[AttachmentInfo] = []
    for item in walker.found:
        cid_used = bool(item.content_id) and item.content_id.lower() in referenced
        if item.disposition == "attachment":
            inline = cid_used
        elif item.disposition == "inline":
            inline = True
        else:
            inline = bool(item.content_id) and (cid_used or item.in_related)
        files.append(
            AttachmentInfo(
                part_id=item.part_id,
                filename=item.filename,
                content_type=item.content_type,
                content_id=item.content_id,
                size=item.size,
                inline=inline,
            )
        )
    defects = list(dict.fromkeys(walker.defects))
    return Walk(text="\n\n".join(walker.texts), html=html, files=files, defects=defects)
