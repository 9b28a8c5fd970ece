"""Mailpit's search syntax as a small AST. The parser (`parse_query`) lives here too.

A query is a conjunction of terms. Each term is a field filter or free text, possibly negated
(`-term` or `!term`). Free text and quoted phrases match case-insensitively as substrings of
subject, addresses, names, message id and body text.

Every term costs a scan of the project's messages, so a query is bounded: at most
`MAX_QUERY_LENGTH` characters and `MAX_TERMS` terms, sizes at most `MAX_SEARCH_SIZE` octets
(a bigger number would not fit the database's integers). Beyond them the parser raises
QuerySyntaxError (a 400 naming the problem) before any query runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal

from postroom.core.errors import InvalidInput

Field = Literal[
    "text",  # free word or quoted phrase
    "from",
    "to",
    "cc",
    "bcc",  # the Bcc header and envelope recipients not named in To or Cc
    "reply-to",
    "addressed",  # any of From, To, Cc, Bcc (as bcc:) and Reply-To
    "subject",
    "message-id",
    "tag",
    "is-read",  # is:read (value "") -- is:unread is is-read negated
    "is-tagged",
    "has-attachment",
    "has-inline",
    "before",
    "after",
    "larger",
    "smaller",
]


@dataclass(frozen=True, slots=True)
class Term:
    field: Field
    text: str = ""  # lower-cased for text fields; exact tag name for "tag"
    when: datetime | None = None  # before/after, timezone-aware
    size: int | None = None  # larger/smaller, bytes
    negated: bool = False


@dataclass(frozen=True, slots=True)
class SearchQuery:
    terms: tuple[Term, ...]

    @property
    def empty(self) -> bool:
        return not self.terms


class QuerySyntaxError(InvalidInput):
    """A search query that cannot be understood (bad date or size); names the "query" field."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="query")


_TEXT_FIELDS: dict[str, Field] = {
    "from": "from",
    "to": "to",
    "cc": "cc",
    "bcc": "bcc",
    "reply-to": "reply-to",
    "addressed": "addressed",
    "subject": "subject",
    "message-id": "message-id",
}
_IS_VALUES = ("read", "unread", "tagged")
_HAS_VALUES = ("attachment", "attachments", "inline")
# Operators of other mail searches (Gmail's, notmuch's, older Mailpit ones) that Postroom does
# not have: a query using one is refused rather than searched as text and silently empty.
_UNSUPPORTED = frozenset(
    {
        "in",
        "label",
        "filename",
        "older_than",
        "newer_than",
        "older",
        "newer",
        "size",
        "list",
        "deliveredto",
        "category",
        "rfc822msgid",
        "id",
        "body",
        "date",
        "header",
        "attachment",
        "mimetype",
    }
)
_DATE_FIELDS: dict[str, Field] = {"before": "before", "after": "after"}
_SIZE_FIELDS: dict[str, Field] = {"larger": "larger", "smaller": "smaller"}
_PREFIXES = frozenset(
    {*_TEXT_FIELDS, *_DATE_FIELDS, *_SIZE_FIELDS, *_UNSUPPORTED, "tag", "is", "has"}
)
_NEGATIONS = "-!"
_DATE = re.compile(
    r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?",
    re.IGNORECASE,
)
_TIME = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?", re.I)
_RELATIVE = re.compile(r"(\d{1,5})\s*([hdw])", re.IGNORECASE)
_SIZE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(?:([kmgt])(?:i?b)?|b|bytes?)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_RELATIVE_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
MAX_QUERY_LENGTH = 2000  # characters
MAX_TERMS = 32
MAX_SEARCH_SIZE = 1024**4  # 1 TB; a message is never larger
OPERATORS = (
    "from: to: cc: bcc: reply-to: addressed: subject: message-id: tag: is:read is:unread "
    "is:tagged has:attachment has:inline before: after: larger: smaller:"
)
_DATE_HELP = "use YYYY-MM-DD, YYYY-MM-DD HH:MM, RFC 3339, today, yesterday or an age like 7d"


@dataclass(frozen=True, slots=True)
class _Token:
    negated: bool
    prefix: str  # lower-cased known prefix, or "" for free text
    value: str
    quoted: bool  # the value was (or contained) a quoted phrase


def _tokens(text: str) -> list[_Token]:
    """Split on whitespace outside double quotes; recognise -/! negation and known prefixes."""
    found: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        negated = False
        if text[i] in _NEGATIONS and i + 1 < n and not text[i + 1].isspace():
            negated = True
            i += 1
        prefix = ""
        chunks: list[str] = []
        quoted = False
        while i < n and not text[i].isspace():
            ch = text[i]
            if ch == '"':
                end = text.find('"', i + 1)
                end = n if end < 0 else end
                chunks.append(text[i + 1 : end])
                quoted = True
                i = end + 1
                continue
            if ch == ":" and not prefix and not quoted and "".join(chunks).lower() in _PREFIXES:
                prefix = "".join(chunks).lower()
                chunks = []
                i += 1
                continue
            chunks.append(ch)
            i += 1
        found.append(_Token(negated, prefix, "".join(chunks), quoted))
    return found


def _parse_date(value: str, now: datetime, tz: tzinfo) -> datetime | None:
    text = value.strip()
    lowered = text.lower()
    midnight = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    if lowered == "today":
        return midnight
    if lowered == "yesterday":
        return midnight - timedelta(days=1)
    if lowered == "now":
        return now
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now - int(relative.group(1)) * _RELATIVE_UNITS[relative.group(2).lower()]
    match = _DATE.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        when = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
        if zone:
            if zone.upper() == "Z":
                offset = timedelta(0)
            else:
                digits = zone[1:].replace(":", "")
                offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
                offset = -offset if zone[0] == "-" else offset
            when = when.replace(tzinfo=timezone(offset))
    except (ValueError, OverflowError):
        return None
    return when


def _parse_size(value: str) -> int | None:
    match = _SIZE.fullmatch(value.strip())
    if not match:
        return None
    number, unit = match.groups()
    try:
        return round(float(number) * _SIZE_UNITS[(unit or "").lower()])
    except (ValueError, OverflowError):
        return None


def parse_query(text: str, now: datetime, *, tz: tzinfo = UTC) -> SearchQuery:
    """Parse Mailpit's search syntax into a SearchQuery.

    Free words and "quoted phrases"; from: to: cc: bcc: reply-to: addressed: subject:
    message-id: tag: (values may be quoted); is:read, is:unread, is:tagged; has:attachment(s),
    has:inline; before:/after: dates; larger:/smaller: sizes (10kb, 1.5MB, 2000; k = 1024). A
    leading - or ! negates a term. A tag: without a name, an unknown value of is: or has:, and
    the operators of other mail searches listed in _UNSUPPORTED (in:, label:, filename:...),
    raise QuerySyntaxError;
    any other word with a colon (re:hello, 10:30, https://x) is plain text. Text is
    lower-cased; tag names keep their case. Dates without a zone are in
    `tz` (UTC unless the caller passes Mailpit's tz parameter); `now` anchors today, yesterday
    and ages like 7d, 12h, 2w. Raises QuerySyntaxError (an InvalidInput on "query") for a date
    or size it cannot read, and for a query beyond the limits above.
    """
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(
            f"The search is {len(text)} characters long; at most {MAX_QUERY_LENGTH} are allowed."
        )
    tokens = _tokens(text)
    terms: list[Term] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        prefix, value, negated = token.prefix, token.value.strip(), token.negated
        original = f"{prefix}:{token.value}" if prefix else token.value
        if prefix in _TEXT_FIELDS:
            if prefix == "message-id":
                value = value.strip("<>").strip()
            if value:
                terms.append(Term(_TEXT_FIELDS[prefix], text=value.lower(), negated=negated))
            continue
        if prefix == "tag":
            if not value:
                # It would match every message (it was dropped until then): a tag name left
                # out is a mistake to tell, as an unknown is: value is.
                raise QuerySyntaxError(
                    f'The search "{original.strip()}" names no tag: write tag:NAME '
                    '(tag:"two words" for a name with spaces).'
                )
            terms.append(Term("tag", text=value, negated=negated))
            continue
        if prefix == "is":
            word = value.lower()
            if word == "tagged":
                terms.append(Term("is-tagged", negated=negated))
            elif word in ("read", "unread"):
                terms.append(Term("is-read", negated=negated != (word == "unread")))
            else:
                raise QuerySyntaxError(
                    f'The search "is:{value}" is not known: use is:read, is:unread or is:tagged.'
                )
            continue
        if prefix == "has":
            word = value.lower()
            if word in ("attachment", "attachments"):
                terms.append(Term("has-attachment", negated=negated))
            elif word == "inline":
                terms.append(Term("has-inline", negated=negated))
            else:
                raise QuerySyntaxError(
                    f'The search "has:{value}" is not known: use has:attachment or has:inline.'
                )
            continue
        if prefix in _UNSUPPORTED:
            raise QuerySyntaxError(
                f'The search operator "{prefix}:" is not supported; the operators are '
                f"{OPERATORS}. Put the words in double quotes to search for them as text."
            )
        if prefix in _DATE_FIELDS:
            following = tokens[index] if index < len(tokens) else None
            if (
                following is not None
                and not token.quoted
                and _DATE.fullmatch(value)
                and ":" not in value
                and not following.negated
                and not following.prefix
                and _TIME.fullmatch(following.value)
            ):
                value = f"{value} {following.value}"  # before:2024-01-31 10:00 unquoted
                index += 1
            when = _parse_date(value, now, tz)
            if when is None:
                raise QuerySyntaxError(
                    f'The search "{prefix}:{value}" has a date that cannot be read: {_DATE_HELP}.'
                )
            terms.append(Term(_DATE_FIELDS[prefix], when=when, negated=negated))
            continue
        if prefix in _SIZE_FIELDS:
            size = _parse_size(value)
            if size is None:
                raise QuerySyntaxError(
                    f'The search "{prefix}:{value}" has a size that cannot be read: '
                    "use a number of bytes with an optional unit, like 2000, 10kb or 1.5MB."
                )
            if size > MAX_SEARCH_SIZE:
                raise QuerySyntaxError(
                    f'The search "{prefix}:{value}" has a size above the largest allowed, '
                    f"{MAX_SEARCH_SIZE} bytes (1TB)."
                )
            terms.append(Term(_SIZE_FIELDS[prefix], size=size, negated=negated))
            continue
        phrase = original.strip() if prefix else value
        if phrase:
            terms.append(Term("text", text=phrase.lower(), negated=negated))
    if len(terms) > MAX_TERMS:
        raise QuerySyntaxError(
            f"The search has {len(terms)} terms; at most {MAX_TERMS} are allowed "
            '(put words that belong together in one "quoted phrase").'
        )
    return SearchQuery(tuple(terms))
