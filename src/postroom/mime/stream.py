"""Big messages without holding them: a streaming scan of the MIME structure.

The `email` parser keeps every part in memory, several times over (a 40 MB message took
hundreds of MB to parse). For a big message `shrink` reads the bytes as a stream of chunks
and writes a small copy in which every leaf body larger than `keep` bytes is replaced by a
one-line placeholder, noting for each what the display needs: its decoded size, the start of
its decoded content (for text bodies, cut at `TEXT_KEEP` bytes) and whether its base64 was
invalid. The small copy parses into the same tree as the original (same part ids, headers,
content types, file names), and `tree.walk(..., elided)` reads sizes and texts from the
notes where it meets a placeholder. `part_chunks` streams the decoded content of one part.

Boundaries are recognised as the `email` feed parser does (a line `--boundary`, optionally
followed by `--`, spaces or tabs, of the innermost multipart or of any enclosing one), and
part ids are numbered as `tree` numbers them. Work is done per chunk in C (bytes.find,
translate, binascii), not per line, so a scan runs at memory speed.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.message import Message

from postroom.mime.checksums import Hashing
from postroom.mime.decoding import header_text
from postroom.mime.tree import (
    _PARSER,
    ELIDED_PREFIX,
    MAX_DEPTH,
    TEXT_KEEP,
    Elided,
    charset_of,
    content_type_of,
    disposition_of,
    filename_of,
)

# Leaf bodies up to this many bytes are kept as they are in the small copy.
KEEP = 64 * 1024
# A header block longer than this ends (the rest is taken as body), as a guard.
MAX_HEADER_BLOCK = 1024 * 1024
_MAX_BOUNDARY_LINE = 1024
_READ_BLOCK = 1024 * 1024

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_B64 = bytes(b for b in range(256) if b not in _B64_ALPHABET)
_NOT_B64_OR_PAD = bytes(b for b in range(256) if b not in _B64_ALPHABET + b"=")
_WHITESPACE = b" \t\r\n\x0b\x0c"
# The feed parser's headerRE: what it takes for a header line.
_HEADER_LINE = re.compile(rb"From |[\041-\071\073-\176]*:|[ \t]")
_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})


@dataclass(slots=True)
class Shrunk:
    """A small copy of a big message and the notes on what it leaves out."""

    data: bytes
    elided: dict[str, Elided] = field(default_factory=dict)  # by placeholder
    size: int = 0  # bytes of the original


class _Reader:
    """Chunks as lines and as body runs up to a boundary line."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self.consumed = 0
        # How the last body run ended: (index in the boundary list, close) or None at the end.
        self.ended: tuple[int, bool] | None = None
        self.boundary_line = b""

    def _fill(self) -> bool:
        if self._eof:
            return False
        for chunk in self._chunks:
            if chunk:
                if self._pos:
                    del self._buf[: self._pos]
                    self._pos = 0
                self._buf += chunk
                return True
        self._eof = True
        return False

    def readline(self, limit: int = MAX_HEADER_BLOCK) -> bytes:
        while True:
            end = self._buf.find(b"\n", self._pos)
            if end >= 0 or len(self._buf) - self._pos >= limit or not self._fill():
                break
        stop = end + 1 if end >= 0 else min(len(self._buf), self._pos + limit)
        line = bytes(self._buf[self._pos : stop])
        self._pos = stop
        self.consumed += len(line)
        return line

    def unread(self, line: bytes) -> None:
        """Step back over the line `readline` just returned (still in the buffer)."""
        self._pos -= len(line)
        self.consumed -= len(line)

    def peek_empty(self) -> bool:
        while self._pos >= len(self._buf):
            if not self._fill():
                return True
        return False

    @staticmethod
    def _match(line: bytes, boundaries: list[bytes]) -> tuple[int, bool] | None:
        stripped = line.rstrip(b"\r\n")
        if not stripped.startswith(b"--"):
            return None
        for index in range(len(boundaries) - 1, -1, -1):
            separator = b"--" + boundaries[index]
            if not stripped.startswith(separator):
                continue
            rest = stripped[len(separator) :]
            close = rest.startswith(b"--")
            if close:
                rest = rest[2:]
            if not rest.strip(b" \t"):
                return index, close
        return None

    def body(self, boundaries: list[bytes]) -> Iterator[bytes]:
        """The bytes up to the next line that is a boundary of `boundaries` (the line is
        consumed; see `ended` and `boundary_line`), or to the end. The line ending before
        the boundary line is part of the body run."""
        self.ended = None
        at_line_start = True  # a body begins at the start of a line
        while True:
            buf, pos = self._buf, self._pos
            if pos >= len(buf):
                if not self._fill():
                    return
                continue
            search = pos
            hold: int | None = None
            while True:
                if search == pos and at_line_start and buf.startswith(b"--", pos):
                    candidate = pos
                else:
                    found = buf.find(b"\n--", search)
                    candidate = found + 1 if found >= 0 else -1
                if candidate < 0:
                    break
                end = buf.find(b"\n", candidate)
                if end < 0 and not self._eof and len(buf) - candidate < _MAX_BOUNDARY_LINE:
                    hold = candidate  # an incomplete line that may be a boundary: read on
                    break
                line = bytes(buf[candidate : end + 1 if end >= 0 else len(buf)])
                match = self._match(line, boundaries) if boundaries else None
                if match is not None:
                    if candidate > pos:
                        data = bytes(buf[pos:candidate])
                        self.consumed += len(data)
                        yield data
                    self._pos = candidate + len(line)
                    self.consumed += len(line)
                    self.ended = match
                    self.boundary_line = line
                    return
                search = candidate + 1
            if hold is None:
                # Keep back a last, incomplete line: it may begin a boundary line.
                newline = buf.rfind(b"\n", pos)
                if self._eof:
                    hold = len(buf)
                elif newline >= 0:
                    hold = newline + 1
                    if len(buf) - hold >= _MAX_BOUNDARY_LINE:
                        hold = len(buf)
                elif at_line_start and len(buf) - pos < _MAX_BOUNDARY_LINE:
                    hold = pos
                else:
                    hold = len(buf)
            if hold > pos:
                data = bytes(buf[pos:hold])
                self._pos = hold
                self.consumed += len(data)
                at_line_start = data.endswith(b"\n")
                yield data
            if self._eof and self._pos >= len(self._buf):
                return
            self._fill()  # at the end, one more turn checks the held line


@dataclass(slots=True)
class PartHead:
    """A part's headers, as parsed from its header block alone."""

    part_id: str
    message: Message
    content_type: str
    leaf: bool

    def is_text_body(self) -> bool:
        """A part the walker shows as a body (text/plain or text/html, not a file)."""
        ctype = self.content_type
        if ctype.startswith("multipart/"):
            ctype = "text/plain"  # a multipart without a usable boundary shows its text
        return (
            ctype in ("text/plain", "text/html")
            and disposition_of(self.message) != "attachment"
            and not filename_of(self.message)
        )


def _boundary(message: Message) -> str | None:
    try:
        return message.get_boundary()
    except Exception:
        return None


def _read_head(reader: _Reader, part_id: str, depth: int) -> tuple[bytes, PartHead]:
    lines: list[bytes] = []
    size = 0
    while not reader.peek_empty():
        line = reader.readline()
        if not _HEADER_LINE.match(line) and line not in (b"\r\n", b"\n"):
            reader.unread(line)  # not a header: the feed parser starts the body here
            break
        lines.append(line)
        size += len(line)
        if line in (b"\r\n", b"\n") or size > MAX_HEADER_BLOCK:
            break
    block = b"".join(lines)
    message = _PARSER.parsebytes(block, headersonly=True)
    ctype = content_type_of(message)
    boundary = _boundary(message) if ctype.startswith("multipart/") else None
    leaf = boundary is None or depth >= 4 * MAX_DEPTH
    return block, PartHead(part_id or "1" if leaf else part_id, message, ctype, leaf)


# Events of a scan: ("raw", bytes) to copy as they are; ("leaf", PartHead, body chunks).
Event = tuple[str, object, object]


def _capped(body: Iterator[bytes], limit: int) -> Iterator[Event]:
    """Preamble and epilogue: shown by no one, kept up to `limit` bytes."""
    kept = 0
    for data in body:
        if kept < limit:
            piece = data[: limit - kept]
            kept += len(piece)
            yield ("raw", piece, None)


def _scan_part(reader: _Reader, part_id: str, outer: list[bytes], depth: int) -> Iterator[Event]:
    block, head = _read_head(reader, part_id, depth)
    yield ("raw", block, None)
    if head.leaf:
        body = reader.body(outer)
        yield ("leaf", head, body)
        for _ in body:  # what the consumer left unread
            pass
        return
    yield ("container", head, None)
    boundary = _boundary(head.message)
    assert boundary is not None
    stack = [*outer, boundary.encode("utf-8", "surrogateescape")]
    mine = len(stack) - 1
    yield from _capped(reader.body(stack), KEEP)  # the preamble
    ended = reader.ended
    index = 0
    while ended is not None and ended[0] == mine and not ended[1]:
        yield ("raw", reader.boundary_line, None)
        index += 1
        child = f"{part_id}.{index}" if part_id else str(index)
        yield from _scan_part(reader, child, stack, depth + 1)
        ended = reader.ended
    if ended is not None and ended[0] == mine:  # the close boundary, then the epilogue
        yield ("raw", reader.boundary_line, None)
        yield from _capped(reader.body(outer), KEEP)
    # Otherwise an enclosing boundary (or the end) ended this multipart too: reader.ended
    # tells the caller.


def scan(chunks: Iterable[bytes]) -> tuple[_Reader, Iterator[Event]]:
    reader = _Reader(chunks)
    return reader, _scan_part(reader, "", [], 0)


class _Decoder:
    """Incremental Content-Transfer-Encoding decoding with the leniency of
    tree.decode_payload: base64 keeps only alphabet characters; quoted-printable is decoded
    line by line. With `size_only` base64 is counted, not decoded (`feed` returns b"" and
    `decoded` the size)."""

    def __init__(self, encoding: str, size_only: bool = False) -> None:
        self.encoding = encoding
        self.size_only = size_only and encoding == "base64"
        self._alphabet = 0
        self._carry = b""
        self.invalid = False
        self._padding_seen = False

    def _check(self, compact: bytes) -> None:
        # tree.decode_payload: invalid when anything but the alphabet remains once trailing
        # "=" are stripped.
        if self.invalid or not compact:
            return
        if compact.translate(None, _B64_ALPHABET + b"="):
            self.invalid = True
        elif self._padding_seen:
            if compact.strip(b"="):
                self.invalid = True
        elif b"=" in compact:
            self._padding_seen = True
            if compact[compact.index(b"=") :].strip(b"="):
                self.invalid = True

    @property
    def decoded(self) -> int:
        """The decoded size of what was fed (size_only)."""
        count = self._alphabet
        if count % 4 == 1:
            count -= 1
        return count // 4 * 3 + {0: 0, 2: 1, 3: 2}[count % 4]

    def _count(self, data: bytes) -> None:
        # Lines of base64 and CRLF: one pass that finds anything else, then memchr counts.
        others = data.translate(None, _B64_ALPHABET + b"=\r\n")
        if others:
            compact = data.translate(None, _WHITESPACE)
            self._check(compact)
            self._alphabet += len(compact.translate(None, _NOT_B64))
            return
        equals = data.count(b"=")
        if equals or (self._padding_seen and not self.invalid):
            self._check(data.translate(None, _WHITESPACE))
        self._alphabet += len(data) - data.count(b"\r") - data.count(b"\n") - equals

    def feed(self, data: bytes) -> bytes:
        if self.size_only:
            self._count(data)
            return b""
        if self.encoding == "base64":
            compact = data.translate(None, _WHITESPACE)
            self._check(compact)
            clean = self._carry + compact.translate(None, _NOT_B64)
            usable = len(clean) - len(clean) % 4
            self._carry = clean[usable:]
            return binascii.a2b_base64(clean[:usable]) if usable else b""
        if self.encoding == "quoted-printable":
            data = self._carry + data
            cut = data.rfind(b"\n") + 1
            self._carry = data[cut:]
            return binascii.a2b_qp(data[:cut]) if cut else b""
        return data

    def finish(self) -> bytes:
        if self.size_only:
            return b""
        carry, self._carry = self._carry, b""
        if self.encoding == "base64":
            if len(carry) % 4 == 1:
                carry = carry[:-1]
            return binascii.a2b_base64(carry + b"=" * (-len(carry) % 4)) if carry else b""
        if self.encoding == "quoted-printable":
            return binascii.a2b_qp(carry) if carry else b""
        return carry


def _encoding(head: PartHead) -> str:
    if head.content_type in _MESSAGE_TYPES:
        return ""
    return header_text(head.message.get("Content-Transfer-Encoding")).lower()


def _eol(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return b"\r\n"
    if data.endswith((b"\n", b"\r")):
        return data[-1:]
    return b""


def _payload_runs(reader: _Reader, head: PartHead, runs: Iterable[bytes]) -> Iterator[bytes]:
    """The body runs of a leaf as the feed parser stores its payload: without the line
    ending before the boundary line that ends it (unless the part says multipart: the feed
    parser strips that line ending from the epilogue it expects instead)."""
    pending = b""
    for data in runs:
        if pending:
            yield pending
        pending = data
    if reader.ended is not None and not head.content_type.startswith("multipart/"):
        pending = pending[: len(pending) - len(_eol(pending))]
    if pending:
        yield pending


def _elide(head: PartHead, first: bytes, runs: Iterator[bytes], checksums: bool = False) -> Elided:
    text_body = head.is_text_body()
    message_type = head.content_type in _MESSAGE_TYPES
    decoder = _Decoder(_encoding(head), size_only=not text_body and not checksums)
    hashing = Hashing() if checksums else None
    raw_size = decoded = kept = 0
    text: list[bytes] = []
    cut = False
    for data in runs:
        raw_size += len(data)
        out = decoder.feed(data)
        decoded += len(out)
        if hashing is not None:
            hashing.update(out)
        if text_body and not cut:
            piece = out[: TEXT_KEEP - kept]
            cut = len(piece) < len(out)
            kept += len(piece)
            text.append(piece)
    tail = decoder.finish()
    decoded += len(tail)
    if hashing is not None:
        hashing.update(tail)
    if text_body and not cut:
        piece = tail[: TEXT_KEEP - kept]
        cut = len(piece) < len(tail)
        text.append(piece)
    if decoder.size_only:
        decoded = decoder.decoded
    subject = ""
    if message_type:
        nested = _PARSER.parsebytes(first.split(b"\r\n\r\n", 1)[0], headersonly=True)
        subject = header_text(nested.get("Subject"))
    return Elided(
        part_id=head.part_id,
        size=raw_size if message_type else decoded,
        text=b"".join(text) if text_body else None,
        cut=cut,
        invalid_base64=decoder.invalid,
        subject=subject,
        checksums=None if hashing is None else hashing.result(),
    )


def shrink(chunks: Iterable[bytes], keep: int = KEEP, *, checksums: bool = False) -> Shrunk:
    """The small copy of the message in `chunks` and the notes on what it leaves out (with
    `checksums`, each elided part's digests too: its content is then decoded, not counted)."""
    reader, events = scan(chunks)
    out: list[bytes] = []
    elided: dict[str, Elided] = {}
    token = secrets.token_hex(8)
    for kind, value, body in events:
        if kind == "raw":
            assert isinstance(value, bytes)
            out.append(value)
        elif kind == "leaf":
            assert isinstance(value, PartHead) and isinstance(body, Iterator)
            held: list[bytes] = []
            size = 0
            for data in body:
                held.append(data)
                size += len(data)
                if size > keep:
                    break
            else:
                out.extend(held)
                continue
            first = b"".join(held)
            held = []
            placeholder = f"{ELIDED_PREFIX}{token}-{len(elided)}"

            def runs(first: bytes = first, body: Iterator[bytes] = body) -> Iterator[bytes]:
                yield first
                yield from body

            payload = _payload_runs(reader, value, runs())
            elided[placeholder] = _elide(value, first, payload, checksums)
            # The placeholder line, then the line ending the feed parser drops.
            out.append(placeholder.encode() + b"\r\n")
    return Shrunk(b"".join(out), elided, reader.consumed)


def part_chunks(chunks: Iterable[bytes], part_id: str) -> tuple[PartHead, Iterator[bytes]] | None:
    """The headers of part `part_id` and its decoded content as chunks (an attached message
    as its bytes); None when the message has no such leaf part."""
    reader, events = scan(chunks)
    for kind, value, body in events:
        if kind == "leaf" and isinstance(value, PartHead) and value.part_id == part_id:
            assert isinstance(body, Iterator)
            return value, _decoded(value, _payload_runs(reader, value, body))
    return None


def _decoded(head: PartHead, runs: Iterator[bytes]) -> Iterator[bytes]:
    decoder = _Decoder(_encoding(head))
    pending = b""
    for data in runs:
        pending += decoder.feed(data)
        if len(pending) >= _READ_BLOCK:
            yield pending
            pending = b""
    pending += decoder.finish()
    if pending:
        yield pending


def part_charset(head: PartHead) -> str | None:
    return charset_of(head.message)
