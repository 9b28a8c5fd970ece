"""The header section of a submitted message: split it, read From/Sender, fix it up.

Works on the raw bytes (CRLF line endings, as the doors hand them over) and never re-serialises
what it does not change: removed fields disappear, added fields are appended to the header
section, an over-long line is folded in place; every other byte stays as the client sent it
(DKIM signs the result, so it must be what will be delivered).

Decisions worth knowing:

* The header section ends at the first empty line, or at the first line that is neither a
  field (`name:`) nor a continuation line (a receiving parser sees that line as body too).
* From must occur exactly once and hold one or more mailboxes (RFC 5322 §3.6, §3.6.2); group
  syntax (RFC 6854) is not accepted in From or Sender on submission.
* A line longer than 998 octets (RFC 5322 §2.1.1) in the header section is folded before a
  space or tab that is already there (folding only adds CRLF before existing whitespace, so the
  unfolded field is unchanged); a line with no such place is refused. Body lines longer than
  998 octets are refused, except in BODY=BINARYMIME messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from postroom.core.errors import PostroomError, Refusal, RefusalKind

MAX_LINE = 998  # octets, without CRLF (RFC 5322 §2.1.1)

_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_ATEXT = "A-Za-z0-9!#$%&'*+\\-/=?^_`{|}~"
_ATOM = re.compile(rf"[{_ATEXT}\u0080-\U0010ffff]+")
_WSP = " \t"


class HeaderError(Refusal):
    """The message cannot be accepted as written (content invalid); `field` names the part at
    fault (From, Sender, headers, body)."""

    def __init__(self, text: str, field: str) -> None:
        super().__init__(RefusalKind.CONTENT_INVALID, text, field=field)


@dataclass(slots=True)
class HeaderField:
    """One field: its lower-cased name and its raw bytes, continuation lines and CRLF included."""

    name: str
    raw: bytes

    @property
    def value(self) -> bytes:
        """The unfolded value (after the colon), without the final CRLF."""
        head = self.raw[:-2] if self.raw.endswith(b"\r\n") else self.raw
        return head.partition(b":")[2].replace(b"\r\n", b"")


@dataclass(slots=True)
class ParsedMessage:
    """A message split into header fields and the rest (empty line and body, verbatim)."""

    fields: list[HeaderField]
    rest: bytes

    def get_all(self, name: str) -> list[HeaderField]:
        return [f for f in self.fields if f.name == name]

    def has(self, name: str) -> bool:
        return any(f.name == name for f in self.fields)

    def to_bytes(self) -> bytes:
        return b"".join(f.raw for f in self.fields) + self.rest


def split_message(data: bytes) -> ParsedMessage:
    """Split `data` (CRLF line endings) into its header fields and the rest."""
    fields: list[HeaderField] = []
    pos = 0
    n = len(data)
    start = -1  # start of the field being read
    name = ""
    while pos < n:
        end = data.find(b"\r\n", pos)
        line_end = n if end < 0 else end + 2
        first = data[pos : pos + 1]
        if first in (b" ", b"\t") and start >= 0:
            pos = line_end  # continuation of the current field
            continue
        if start >= 0:
            fields.append(HeaderField(name, data[start:pos]))
            start = -1
        match = _FIELD.match(data, pos, line_end)
        if match is None:
            break  # the empty line, or a line that is not a field: the body starts here
        name = match.group(1).decode("ascii").lower()
        start = pos
        pos = line_end
    if start >= 0:
        fields.append(HeaderField(name, data[start:pos]))
    return ParsedMessage(fields, data[pos:])


# -- addresses --------------------------------------------------------------------------------


class _AddressSyntax(PostroomError, ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    """RFC 5322 lexical tokens: ("atom", text), ("qs", text with quotes), ("dl", [literal]),
    or (special, special). Comments and whitespace are dropped."""
    out: list[tuple[str, str]] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in _WSP:
            i += 1
        elif c == "(":
            depth = 0
            while i < n:
                c = text[i]
                if c == "\\":
                    i += 2
                    continue
                if c == "(":
                    depth += 1
                elif c == ")":
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            if i >= n:
                raise _AddressSyntax("unterminated comment")
            i += 1
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise _AddressSyntax("unterminated quoted string")
            out.append(("qs", text[i : j + 1]))
            i = j + 1
        elif c == "[":
            j = text.find("]", i)
            if j < 0 or "[" in text[i + 1 : j] or "\\" in text[i + 1 : j]:
                raise _AddressSyntax("malformed domain literal")
            out.append(("dl", text[i : j + 1]))
            i = j + 1
        elif c in "<>@,:;.":
            out.append((c, c))
            i += 1
        else:
            match = _ATOM.match(text, i)
            if match is None:
                raise _AddressSyntax(f"unexpected character {c!r}")
            out.append(("atom", match.group()))
            i = match.end()
    return out


def _addr_spec(tokens: Sequence[tuple[str, str]]) -> str:
    """`local@domain` from the tokens of an addr-spec (obsolete spaces around dots allowed)."""
    try:
        at = next(i for i, t in enumerate(tokens) if t[0] == "@")
    except StopIteration:
        raise _AddressSyntax("no @ in the address") from None
    local, domain = tokens[:at], tokens[at + 1 :]
    if not local or not domain:
        raise _AddressSyntax("empty local part or domain")
    if len(domain) == 1 and domain[0][0] == "dl":
        domain_text = domain[0][1]
    else:
        domain_text = _dotted(domain, quoted_ok=False)
    return f"{_dotted(local, quoted_ok=True)}@{domain_text}"


def _dotted(tokens: Sequence[tuple[str, str]], *, quoted_ok: bool) -> str:
    parts: list[str] = []
    for index, (kind, text) in enumerate(tokens):
        want_word = index % 2 == 0
        if want_word and (kind == "atom" or (quoted_ok and kind == "qs")):
            parts.append(text)
        elif not want_word and kind == ".":
            parts.append(".")
        else:
            raise _AddressSyntax("malformed address")
    if len(tokens) % 2 == 0:
        raise _AddressSyntax("address ends with a dot")
    return "".join(parts)


def _mailbox(tokens: Sequence[tuple[str, str]]) -> str:
    kinds = [t[0] for t in tokens]
    if "<" not in kinds:
        return _addr_spec(tokens)
    open_at = kinds.index("<")
    if kinds.count("<") != 1 or kinds.count(">") != 1 or kinds[-1] != ">":
        raise _AddressSyntax("malformed angle address")
    if any(k not in ("atom", "qs", ".") for k in kinds[:open_at]):
        raise _AddressSyntax("malformed display name")
    inner = tokens[open_at + 1 : -1]
    if ":" in [t[0] for t in inner]:  # obsolete source route: @a,@b:user@host
        inner = inner[[t[0] for t in inner].index(":") + 1 :]
    return _addr_spec(inner)


def parse_mailboxes(value: bytes) -> list[str]:
    """The addr-specs of a mailbox-list field value (unfolded). Raises ValueError when the value
    is not valid UTF-8 or not a mailbox-list."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the field is not valid UTF-8") from None
    tokens = _tokens(text)
    found: list[str] = []
    current: list[tuple[str, str]] = []
    depth = 0
    angle = False  # a '<' in `current` (a flag: scanning `current` per token is quadratic)
    for token in [*tokens, (",", ",")]:
        kind = token[0]
        if kind in (":", ";") and depth == 0 and not angle:
            raise _AddressSyntax("group syntax is not accepted here")
        if kind == "<":
            depth += 1
            angle = True
        elif kind == ">":
            depth -= 1
        if kind == "," and depth == 0:
            if current:  # empty list elements are obsolete but harmless (RFC 5322 §4.4)
                found.append(_mailbox(current))
            current = []
            angle = False
        else:
            current.append(token)
    if not found:
        raise _AddressSyntax("no address")
    return found


def parse_address_list(value: bytes) -> list[str]:
    """The addr-specs of an address-list field value (unfolded; To, Cc, Bcc, Reply-To): mailboxes
    and groups (RFC 5322 §3.4), a group contributing its members (`undisclosed-recipients:;`
    none). Raises ValueError when the value is not valid UTF-8 or not an address-list."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the field is not valid UTF-8") from None
    found: list[str] = []
    current: list[tuple[str, str]] = []
    depth = 0
    items = 0
    in_group = after_group = False
    for kind, word in [*_tokens(text), ("end", "")]:
        if depth == 0 and kind == ":" and not in_group and not after_group:
            if not current or any(k not in ("atom", "qs", ".") for k, _ in current):
                raise _AddressSyntax("malformed group name")
            in_group, current = True, []
            continue
        if depth == 0 and kind == ";":
            if not in_group:
                raise _AddressSyntax("';' outside a group")
            if current:
                found.append(_mailbox(current))
            in_group, after_group, current = False, True, []
            items += 1
            continue
        if depth == 0 and kind in (",", "end"):
            if kind == "end" and in_group:
                raise _AddressSyntax("a group is not closed with ';'")
            if current:  # empty list elements are obsolete but harmless (RFC 5322 §4.4)
                found.append(_mailbox(current))
                items += 0 if in_group else 1
            current, after_group = [], False
            continue
        if after_group:
            raise _AddressSyntax("text after the end of a group")
        if kind == "<":
            depth += 1
        elif kind == ">":
            depth -= 1
            if depth < 0:
                raise _AddressSyntax("'>' without '<'")
        current.append((kind, word))
    if depth:
        raise _AddressSyntax("'<' without '>'")
    if not items:
        raise _AddressSyntax("no address")
    return found


def address_domain(address: str) -> str:
    return address.rpartition("@")[2]


# -- checks and fix-ups ------------------------------------------------------------------------

NO_FROM = (
    "The message has no From header field; a submitted message must say who it is from "
    "(RFC 5322 section 3.6)"
)
SEVERAL_FROM = "The message has more than one From header field (RFC 5322 section 3.6)"
BAD_FROM = (
    "The From header field cannot be parsed: it must hold one or more addresses "
    "like Name <user@example.com>"
)
BAD_SENDER = (
    "The Sender header field cannot be parsed: it must hold one address like user@example.com"
)
BAD_RESENT = (
    "A {} header field cannot be parsed: it must hold addresses like Name <user@example.com>"
)
LONG_HEADER = (
    "A header line is longer than 998 characters and has no space to fold it at "
    "(RFC 5322 section 2.1.1)"
)
LONG_BODY = (
    "A body line is longer than 998 characters (RFC 5322 section 2.1.1); "
    "encode long lines with quoted-printable or base64"
)


@dataclass(frozen=True, slots=True)
class Authors:
    """The identities a submitted message claims: From mailboxes, the Sender, if any, and the
    mailboxes of every Resent-From and Resent-Sender field (RFC 5322 section 3.6.6)."""

    from_: tuple[str, ...]
    sender: str | None
    resent: tuple[str, ...] = ()


def read_authors(message: ParsedMessage) -> Authors:
    """From (exactly one field, one or more mailboxes), Sender (at most one mailbox), and the
    mailboxes of the Resent-From and Resent-Sender fields (any number of resent blocks).
    Raises HeaderError (550 5.6.0) naming the problem."""
    from_fields = message.get_all("from")
    if not from_fields:
        raise HeaderError(NO_FROM, "From")
    if len(from_fields) > 1:
        raise HeaderError(SEVERAL_FROM, "From")
    try:
        from_ = parse_mailboxes(from_fields[0].value)
    except ValueError:
        raise HeaderError(BAD_FROM, "From") from None
    sender: str | None = None
    sender_fields = message.get_all("sender")
    if sender_fields:
        try:
            parsed = parse_mailboxes(sender_fields[0].value)
        except ValueError:
            raise HeaderError(BAD_SENDER, "Sender") from None
        if len(sender_fields) > 1 or len(parsed) > 1:
            raise HeaderError(BAD_SENDER, "Sender")
        sender = parsed[0]
    resent: list[str] = []
    for name, title in (("resent-from", "Resent-From"), ("resent-sender", "Resent-Sender")):
        for resent_field in message.get_all(name):
            try:
                resent.extend(parse_mailboxes(resent_field.value))
            except ValueError:
                raise HeaderError(BAD_RESENT.format(title), title) from None
    return Authors(tuple(from_), sender, tuple(resent))


def fold_long_lines(field: HeaderField) -> HeaderField:
    """The field with every line over 998 octets folded before existing whitespace.
    Raises HeaderError when a line has no place to fold at."""
    raw = field.raw
    lines = raw.split(b"\r\n")
    if all(len(line) <= MAX_LINE for line in lines):
        return field
    out: list[bytes] = []
    for line in lines:
        while len(line) > MAX_LINE:
            cut = _fold_point(line)
            if cut <= 0:
                raise HeaderError(LONG_HEADER, "headers")
            out.append(line[:cut])
            line = line[cut:]
        out.append(line)
    return HeaderField(field.name, b"\r\n".join(out))


def _fold_point(line: bytes) -> int:
    """The last index <= 998 holding a space or tab with non-whitespace before it and after it
    (a folded line must not be whitespace only), or -1."""
    index = MAX_LINE
    while index > 0:
        space = max(line.rfind(b" ", 0, index + 1), line.rfind(b"\t", 0, index + 1))
        if space <= 0:
            return -1
        if line[:space].strip(b" \t") and line[space:].strip(b" \t"):
            return space
        index = space - 1
    return -1


def check_body_lines(rest: bytes) -> None:
    """Refuse body lines over 998 octets (550 5.6.0)."""
    if len(rest) > MAX_LINE + 2 and max(map(len, rest.split(b"\r\n"))) > MAX_LINE:
        raise HeaderError(LONG_BODY, "body")


def check_body_line_chunks(chunks: Iterable[bytes]) -> None:
    """`check_body_lines` for a body read as chunks (a big message, from its file)."""
    line = 0  # length of the line in progress
    carry = b""  # a CR that may begin a CRLF cut by the end of a chunk
    for chunk in chunks:
        data = carry + chunk if carry else chunk
        carry = b""
        if data.endswith(b"\r"):
            carry, data = b"\r", data[:-1]
        first = data.find(b"\r\n")
        if first < 0:
            line += len(data)
            if line > MAX_LINE:
                raise HeaderError(LONG_BODY, "body")
            continue
        last = data.rfind(b"\r\n")
        if line + first > MAX_LINE or (
            last - first - 2 > MAX_LINE
            and max(map(len, data[first + 2 : last].split(b"\r\n"))) > MAX_LINE
        ):
            raise HeaderError(LONG_BODY, "body")
        line = len(data) - last - 2
    if line + len(carry) > MAX_LINE:
        raise HeaderError(LONG_BODY, "body")


def fix_up(
    message: ParsedMessage,
    *,
    message_id: str,
    id_domain: str,
    now: datetime,
    binary: bool = False,
) -> bytes:
    """The message as it will be delivered: Bcc removed, Message-ID and Date added when absent
    (appended to the header section), long header lines folded, body lines checked."""
    kept = [fold_long_lines(f) for f in message.fields if f.name != "bcc"]
    added: list[bytes] = []
    if not any(f.name == "message-id" for f in kept):
        added.append(f"Message-ID: <{message_id.lower()}@{id_domain}>\r\n".encode())
    if not any(f.name == "date" for f in kept):
        added.append(f"Date: {format_datetime(now)}\r\n".encode())
    rest = message.rest
    if not binary:
        check_body_lines(rest)
    if kept and not kept[-1].raw.endswith(b"\r\n"):
        # a message that is a header section only, without the final CRLF
        kept[-1] = HeaderField(kept[-1].name, kept[-1].raw + b"\r\n")
    if not rest.startswith(b"\r\n"):
        rest = b"\r\n" + rest  # keep the body a body once fields are appended above it
    return b"".join(f.raw for f in kept) + b"".join(added) + rest
