"""Tolerant decoding of header values, addresses and body bytes.

Everything here takes whatever a sender put on the wire and returns the best readable text it
can; none of it raises for bad input. Header values arrive as the `email` package's compat32
parser stores them: folded, with any 8-bit bytes carried as surrogate escapes.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import re
from datetime import UTC, datetime
from email.utils import getaddresses, parsedate_to_datetime

from postroom.core.types import Address

# An RFC 2047 encoded word: =?charset[*language]?B|Q?encoded-text?=
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_LINE_BREAK = re.compile(r"\r?\n|\r")
# One comma-separated item of an address list (commas inside quotes do not split).
_LIST_ITEM = re.compile(r'(?:"[^"\\]*"|[^,"])+')
_SIMPLE_MAILBOX = re.compile(
    r'\s*(?:(?:"([^"\\]*)"|([^",<>()\\;:@\[\]]*?))\s*<([^<>\s"(),;:\\\[\]]+@[^<>\s"(),;:\\\[\]@]+)>'
    r'|([^<>\s"(),;:\\\[\]]+@[^<>\s"(),;:\\\[\]@]+))\s*'
)

_ASCII_NAMES = frozenset({"ascii", "us-ascii", "646", "ansi_x3.4-1968", "us"})
_UNKNOWN_CHARSETS = frozenset({"", "unknown-8bit", "x-unknown", "unknown", "default"})


def _codec_name(charset: str | None) -> str | None:
    """The Python codec for a declared charset, or None when unknown, absent or plain ASCII."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    if name in _UNKNOWN_CHARSETS or name in _ASCII_NAMES:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if info.name == "ascii":
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode body or header bytes: the declared charset, else UTF-8, else Latin-1.

    A known charset that does not fit the bytes is tried after UTF-8 (mislabelled UTF-8 is the
    commonest error) with replacement characters; Latin-1 is the last resort because it never
    fails and loses no byte.
    """
    codec = _codec_name(charset)
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeError, LookupError, ValueError, TypeError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if codec is not None:
        try:
            return data.decode(codec, "replace")
        except (UnicodeError, LookupError, ValueError, TypeError):
            pass
    return data.decode("latin-1")


def repair(value: str) -> str:
    """Turn surrogate-escaped 8-bit bytes (raw UTF-8 headers, SMTPUTF8) back into text."""
    if value.isascii():
        return value
    try:
        raw = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        # Real non-ASCII characters (not escapes): already text, keep it but drop strays.
        return value.encode("utf-8", "replace").decode("utf-8")
    return decode_bytes(raw)


def unfold(value: str) -> str:
    """RFC 5322 unfolding: remove the line breaks of folded header lines."""
    if "\n" not in value and "\r" not in value:
        return value
    return _LINE_BREAK.sub("", value)


def _word_bytes(encoding: str, text: str) -> bytes | None:
    data = text.encode("ascii", "replace")
    try:
        if encoding in "bB":
            data = data.rstrip(b"=")
            if len(data) % 4 == 1:  # one stray character cannot be base64: drop it
                data = data[:-1]
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        return binascii.a2b_qp(data, header=True)
    except (binascii.Error, ValueError):
        return None


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words anywhere in `value` (also inside quotes, as mailers do).

    Whitespace between adjacent encoded words is dropped; consecutive words in the same
    charset are joined before decoding so multi-byte characters split across words survive.
    A word that cannot be decoded is kept as written.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    position = 0
    after_word = False

    def flush() -> None:
        nonlocal pending_charset
        if pending:
            out.append(decode_bytes(bytes(pending), pending_charset))
            pending.clear()
        pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        gap = value[position : match.start()]
        if not (after_word and not gap.strip()):
            flush()
            out.append(gap)
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            flush()
            out.append(match.group(0))
            after_word = False
        else:
            charset = match.group(1).lower()
            if pending and charset != pending_charset:
                flush()
            pending += data
            pending_charset = charset
            after_word = True
        position = match.end()
    flush()
    out.append(value[position:])
    return "".join(out)


def header_text(value: str | None) -> str:
    """A raw header value as text a person reads: unfolded, 8-bit repaired, RFC 2047 decoded."""
    if not value:
        return ""
    return decode_words(repair(unfold(value))).strip()


def _simple_addresses(text: str) -> tuple[Address, ...] | None:
    """The common shapes (`a@b`, `Name <a@b>`, `"Name" <a@b>`, comma-separated) without the
    stdlib's character-by-character parser; None when anything is unusual."""
    if text.count('"') % 2:
        return None
    found: list[Address] = []
    for chunk in _LIST_ITEM.findall(text):
        if not chunk.strip():
            continue
        match = _SIMPLE_MAILBOX.fullmatch(chunk)
        if match is None:
            return None
        quoted, bare, bracketed, alone = match.groups()
        if alone is not None:
            found.append(Address(name="", address=alone))
        else:
            name = quoted if quoted is not None else " ".join(bare.split())
            found.append(Address(name=decode_words(name).strip(), address=bracketed))
    return tuple(found)


_CACHED_ADDRESS_LENGTH = 512  # longer values (long recipient lists) are parsed, not kept


def parse_addresses(value: str | None) -> tuple[Address, ...]:
    """Mailboxes of an address header. Garbage yields what could be read, never an error."""
    if not value:
        return ()
    if len(value) <= _CACHED_ADDRESS_LENGTH:
        return _parse_short_addresses(value)
    return _parse_addresses(value)


# Test suites send from one address to a few: the same short values come back again and again.
@functools.lru_cache(maxsize=1024)
def _parse_short_addresses(value: str) -> tuple[Address, ...]:
    return _parse_addresses(value)


def _parse_addresses(value: str) -> tuple[Address, ...]:
    text = repair(unfold(value))
    simple = _simple_addresses(text)
    if simple is not None:
        return simple
    try:
        pairs = getaddresses([text])
    except Exception:  # the stdlib parser has had crash bugs on hostile input
        return (Address(name="", address=text.strip()),) if text.strip() else ()
    found: list[Address] = []
    for name, address in pairs:
        name = decode_words(name).strip()
        address = address.strip()
        if "<" in address:  # an unbalanced quote swallowed the name: split it back out
            before, _, after = address.partition("<")
            name = name or before.strip().strip('"').strip()
            address = after.split(">", 1)[0].strip()
        if name or address:
            found.append(Address(name=name, address=address))
    if _mangled(text, found):
        return (Address(name="", address=text.strip()),)
    return tuple(found)


def _mangled(text: str, found: list[Address]) -> bool:
    """The parser guessed: brackets that do not pair up (`<<not an address`) left an address
    without `@` that is only a fragment of the field. Shown as written instead (the headers
    check says what is wrong with it)."""
    if all("@" in a.address for a in found):
        return False
    return text.count("<") != text.count(">") or "<<" in text or ">>" in text


def parse_date(value: str | None) -> datetime | None:
    """An RFC 5322 date as an aware datetime (zone-less dates taken as UTC), or None."""
    if not value:
        return None
    if len(value) <= _CACHED_DATE_LENGTH:
        return _parse_short_date(value)
    return _parse_date(value)


_CACHED_DATE_LENGTH = 128  # a real Date header is ~40 characters; odd long ones are not kept


# Mail arriving together mostly carries the same Date (one-second resolution): remember a few.
@functools.lru_cache(maxsize=256)
def _parse_short_date(value: str) -> datetime | None:
    return _parse_date(value)


def _parse_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(unfold(value).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def strip_angle(value: str) -> str:
    """`<id@host>` → `id@host`; the first bracketed token when several are present."""
    text = value.strip()
    start = text.find("<")
    if start >= 0:
        end = text.find(">", start + 1)
        return (text[start + 1 : end] if end > 0 else text[start + 1 :]).strip()
    return text
