"""Hashing of passwords and API keys: secrets are never stored or logged in clear.

Two kinds of secret, two schemes:

- Passwords people choose (web login) are low-entropy: stored as argon2id hashes
  (`hash_password` / `verify_password`), deliberately slow to guess.
- Secrets Postroom generates (API keys, SMTP passwords) carry 256 random bits: guessing is
  hopeless, so a SHA-256 digest is enough and can be looked up by equality in one index scan
  (`new_api_key`, `secret_digest`, `verify_secret`). An API key looks like
  `prk_<key id>_<secret>`: the key id is public (shown in lists, logged), the rest is not.

Nothing here logs; `repr()` of an `IssuedKey` hides the token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from postroom.core.errors import InvalidInput

__all__ = [
    "IssuedKey",
    "api_key_id",
    "hash_password",
    "new_api_key",
    "new_secret",
    "password_needs_rehash",
    "secret_digest",
    "verify_password",
    "verify_secret",
]

# argon2-cffi's defaults are RFC 9106's second recommended option (argon2id, t=3, 64 MiB, p=4).
_HASHER = PasswordHasher()
_PREFIX = re.compile(r"[a-z][a-z0-9]{0,15}")
_KEY = re.compile(r"([a-z][a-z0-9]{0,15})_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{20,})")
_KEY_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
MAX_PASSWORD_LENGTH = 1024  # beyond that, hashing is a denial of service, not a password


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string, salt included) of `password`."""
    if not password:
        raise InvalidInput("the password is empty", field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"the password is longer than {MAX_PASSWORD_LENGTH} characters", field="password"
        )
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True if `password` matches `stored_hash`. A malformed hash is simply no match."""
    if not password or len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with older parameters (rehash after a successful login)."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def _check_prefix(prefix: str) -> str:
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"secret prefix {prefix!r}: 1-16 lower-case letters and digits")
    return prefix


def new_secret(prefix: str, nbytes: int = 32) -> str:
    """`<prefix>_<random>`: a URL-safe random secret (default 256 bits) for SMTP passwords and
    other generated credentials. The prefix makes leaked secrets recognisable by scanners."""
    if nbytes < 16:
        raise ValueError("a secret needs at least 16 random bytes")
    return f"{_check_prefix(prefix)}_{secrets.token_urlsafe(nbytes)}"


def secret_digest(secret: str) -> str:
    """The value to store for a generated high-entropy secret: hex SHA-256 (64 characters).
    Not for passwords people choose: use hash_password for those."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def verify_secret(secret: str, stored_digest: str) -> bool:
    """Constant-time comparison of `secret`'s digest with the stored one."""
    return hmac.compare_digest(secret_digest(secret).encode(), stored_digest.encode())


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new API key. Show `token` to the user once; store only `key_id` and `digest`."""

    key_id: str
    token: str = field(repr=False)
    digest: str

    def __str__(self) -> str:
        return f"{self.key_id} (secret hidden)"


def new_api_key(prefix: str = "prk") -> IssuedKey:
    """`<prefix>_<12-char key id>_<43-char secret>`, with its key id and digest."""
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(12))
    token = f"{_check_prefix(prefix)}_{key_id}_{secrets.token_urlsafe(32)}"
    return IssuedKey(key_id=key_id, token=token, digest=secret_digest(token))


def api_key_id(token: str) -> str:
    """The public key id inside an API key (to find its record). Raises InvalidInput when the
    token is not shaped like one of ours (without echoing the token)."""
    match = _KEY.fullmatch(token.strip())
    if not match:
        raise InvalidInput("malformed API key", field="api_key")
    return match.group(2)
