"""Message identifiers: 26-character, time-ordered, URL-safe (ULID layout, Crockford base32).

The 80 random bits come from a per-process generator seeded once from the OS: identifiers must
be unique, not secret, and os.urandom costs a system call per message on the hot path.
"""

from __future__ import annotations

import os
import random
import threading
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two base32 digits per table entry: 13 lookups make 26 characters.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = tuple(range(120, -10, -10))


class _Random(threading.local):
    def __init__(self) -> None:
        self.rng = random.Random(os.urandom(32))


_local = _Random()


def _reseed() -> None:
    """A forked child must not repeat its parent's sequence."""
    _local.rng = random.Random(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def _bits80() -> int:
    return _local.rng.getrandbits(80)


def new_id(at: datetime) -> str:
    """A new identifier whose prefix sorts by `at` (millisecond resolution)."""
    value = (int(at.timestamp() * 1000) << 80) | _bits80()
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in _SHIFTS])


def is_id(text: str) -> bool:
    return len(text) == 26 and all(c in _ALPHABET for c in text)
