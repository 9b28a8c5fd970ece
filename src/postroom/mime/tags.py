"""Tags a message gets at ingest: its X-Tags header and plus-addressed recipients."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from postroom.core.types import Summary

_ALLOWED_PUNCTUATION = frozenset(" -_./:")


def clean_tag(tag: str) -> str:
    """Keep Mailpit's tag characters (letters, digits, space, - _ . / :), collapse spaces, trim.

    Letters include non-ASCII letters ("Überprüfung" stays as is); anything else is dropped.
    """
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in tag
        if ch.isalpha() or ch.isdigit() or ch.isspace() or ch in _ALLOWED_PUNCTUATION
    )
    return " ".join(kept.split())


def plus_tag(address: str) -> str:
    """ "user+tag@domain" → "tag" (everything after the first "+"); "" when there is none."""
    local, at, _domain = address.strip().strip("<>").rpartition("@")
    if not at:
        return ""
    _user, plus, tag = local.partition("+")
    return tag if plus else ""


def tags_for(summary: Summary, recipients: Sequence[str]) -> tuple[str, ...]:
    """Tags in a stable order: X-Tags first, then plus-addresses of the envelope recipients,
    then of To and Cc. Deduplicated case-insensitively, keeping the first spelling."""
    candidates: list[str] = list(summary.header_tags)
    addresses: Iterable[str] = (
        *recipients,
        *(a.address for a in summary.to),
        *(a.address for a in summary.cc),
    )
    candidates.extend(plus_tag(address) for address in addresses)
    seen: set[str] = set()
    tags: list[str] = []
    for candidate in candidates:
        tag = clean_tag(candidate)
        key = tag.casefold()
        if tag and key not in seen:
            seen.add(key)
            tags.append(tag)
    return tuple(tags)
