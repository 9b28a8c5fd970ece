"""Message identifiers: 26-character, time-ordered, URL-safe (ULID layout, Crockford base32)."""

from __future__ import annotations

import os
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(at: datetime) -> str:
    """A new identifier whose prefix sorts by `at` (millisecond resolution)."""
    millis = int(at.timestamp() * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def is_id(text: str) -> bool:
    return len(text) == 26 and all(c in _ALPHABET for c in text)
