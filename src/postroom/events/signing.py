"""Webhook request signatures: HMAC-SHA256 over the timestamp, a dot and the body.

    Postroom-Timestamp: 1767225600
    Postroom-Signature: v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

`v1` is the lowercase hex HMAC-SHA256, keyed with the webhook's secret (its UTF-8 bytes, the
whole `whsec_...` string), of the ASCII decimal timestamp (Unix seconds), `.`, and the request
body exactly as received. A receiver recomputes it, compares in constant time, and rejects a
timestamp too far from its own clock (a replay). The header may carry several `v1=`
signatures separated by commas; any one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

SIGNATURE_HEADER = "Postroom-Signature"
TIMESTAMP_HEADER = "Postroom-Timestamp"
EVENT_HEADER = "Postroom-Event-Id"
WEBHOOK_HEADER = "Postroom-Webhook-Id"
SECRET_PREFIX = "whsec_"
# How far a request's timestamp may be from the receiver's clock (seconds).
DEFAULT_TOLERANCE = 300


def new_secret() -> str:
    """A new webhook secret: `whsec_` and 32 random bytes (base64url)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `v1` signature (hex) of `body` sent at `timestamp`."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: f"v1={sign(secret, timestamp, body)}",
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> bool:
    """True when `headers` (names in any case) carry a valid signature of `body` made within
    `tolerance` seconds of `now` (Unix seconds). The receivers' check, in Python."""
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    if not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    expected = sign(secret, int(stamp), body)
    for part in lowered.get(SIGNATURE_HEADER.lower(), "").split(","):
        version, _, value = part.strip().partition("=")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False
