"""VERP return paths: `bounces+<token>@<bounce domain>`, one per recipient of a delivery.

The token names the queue entry (so the message and the recipient) and carries a MAC, so that
an asynchronous bounce sent to the return path maps back to what it bounces, and nobody can
make up an address that maps to an entry they were never sent:

    token = base32(entry id) + base32(HMAC-SHA256(key, "verp1:" + base32(entry id)))[:10]

lower case (mail servers may change the case of a local part; the token is read
case-insensitively), 50 bits of MAC. The key is 32 random bytes in `verp.key` in the data
directory (mode 0600, created on first use); several nodes sharing one PostgreSQL need the
same file, as they do the sealing key.

`resolve` maps an address back: the MX door uses it for mail to a bounce domain.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from postroom.core.errors import NotFound, StorageError
from postroom.core.ports import QueueStore

KEY_FILE = "verp.key"
PREFIX = "bounces"
MAC_LENGTH = 10  # base32 characters: 50 bits
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_MAX_ID_DIGITS = 13  # 2**64 in base32


def _b32(number: int) -> str:
    if number < 0:
        raise ValueError("an entry id is not negative")
    digits = []
    while True:
        number, digit = divmod(number, 32)
        digits.append(_ALPHABET[digit])
        if not number:
            return "".join(reversed(digits))


def _from_b32(text: str) -> int | None:
    number = 0
    for char in text:
        digit = _ALPHABET.find(char)
        if digit < 0:
            return None
        number = number * 32 + digit
    return number


@dataclass(frozen=True, slots=True)
class ReturnPathMatch:
    """What a VERP address names: the queue entry, its message, recipient and project."""

    entry_id: int
    project: str
    message_id: str
    recipient: str


class Verp:
    """Makes and reads VERP return paths with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a VERP key needs at least 16 bytes")
        self._key = key

    @classmethod
    def load_or_create(cls, data_dir: Path) -> Verp:
        """The key in `data_dir/verp.key`, created (0600) when missing."""
        path = Path(data_dir) / KEY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(base64.b64encode(secrets.token_bytes(32)) + b"\n")
        try:
            key = base64.b64decode(path.read_bytes().strip(), validate=True)
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read the VERP key {path}: {exc}") from None
        return cls(key)

    def _mac(self, ident: str) -> str:
        digest = hmac.new(self._key, b"verp1:" + ident.encode("ascii"), hashlib.sha256).digest()
        return base64.b32encode(digest).decode("ascii").lower()[:MAC_LENGTH]

    def token(self, entry_id: int) -> str:
        ident = _b32(entry_id)
        return ident + self._mac(ident)

    def address(self, entry_id: int, domain: str) -> str:
        """The return path of queue entry `entry_id` on `domain`."""
        return f"{PREFIX}+{self.token(entry_id)}@{domain}"

    def entry_of(self, address: str) -> int | None:
        """The queue entry a VERP address names, or None when it is not one of ours (wrong
        form, or a MAC that does not verify). The domain is not looked at."""
        local = address.strip().strip("<>").rpartition("@")[0].lower()
        prefix, plus, token = local.partition("+")
        if prefix != PREFIX or not plus or not MAC_LENGTH < len(token) <= 13 + MAC_LENGTH:
            return None
        ident, mac = token[:-MAC_LENGTH], token[-MAC_LENGTH:]
        if len(ident) > _MAX_ID_DIGITS or (len(ident) > 1 and ident[0] == "a"):
            return None  # not the one spelling `_b32` makes
        number = _from_b32(ident)
        if number is None or not hmac.compare_digest(mac, self._mac(ident)):
            return None
        return number


def resolve(address: str, verp: Verp, queue: QueueStore) -> ReturnPathMatch | None:
    """Map a return path back to the message and recipient it was made for; None when the
    address is not a valid VERP address or its entry is gone (its message deleted)."""
    entry_id = verp.entry_of(address)
    if entry_id is None:
        return None
    try:
        entry = queue.get(entry_id)
    except NotFound:
        return None
    return ReturnPathMatch(entry.id, entry.project, entry.message_id, entry.recipient)
