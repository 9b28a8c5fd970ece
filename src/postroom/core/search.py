"""Mailpit's search syntax as a small AST. The parser (`parse_query`) lives here too.

A query is a conjunction of terms. Each term is a field filter or free text, possibly negated
(`-term` or `!term`). Free text and quoted phrases match case-insensitively as substrings of
subject, addresses, names, message id and body text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Field = Literal[
    "text",  # free word or quoted phrase
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "message-id",
    "tag",
    "is-read",  # is:read (value "") -- is:unread is is-read negated
    "has-attachment",
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
