"""AWS Signature Version 4 verification, for the SES-compatible API.

`verify(request, lookup, now)` checks the `Authorization: AWS4-HMAC-SHA256 ...` header of a
request the way AWS does: it rebuilds the canonical request from what arrived (method, the raw
path URI-encoded once more, sorted query parameters, the signed headers, the payload hash),
derives the signing key from the secret of the access key id and compares signatures in
constant time. It refuses, with an `SigV4Error` whose `code` is the AWS error name:

* a missing or malformed header or date (`IncompleteSignature`, `MissingAuthenticationToken`);
* an unknown access key (`InvalidClientTokenId`);
* a signature that does not match (`SignatureDoesNotMatch`);
* a request dated more than five minutes away from now (`RequestExpired`), so a captured
  request cannot be replayed later; within the window `ReplayCache` refuses the same
  signature twice;
* a signature that does not cover `host` (and `x-amz-date` when that header carries the date).

Pure: no HTTP framework; the caller passes the request's parts and the injected time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from postroom.core.errors import PostroomError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = timedelta(minutes=5)
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<headers>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
_SPACES = re.compile(r"\s+")


class SigV4Error(PostroomError):
    """The request is not authentic; `code` is the AWS error name, `status` the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass(frozen=True, slots=True)
class SignedRequest:
    method: str
    raw_path: str  # as it arrived, still percent-encoded
    query: Sequence[tuple[str, str]]  # decoded name/value pairs, in any order
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True, slots=True)
class Verified:
    access_key_id: str
    region: str
    service: str
    date: datetime
    signature: str


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode("utf-8"), day)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def canonical_request(request: SignedRequest, signed_headers: Sequence[str]) -> str:
    path = quote(request.raw_path or "/", safe="/~")
    query = "&".join(sorted(f"{_encode(name)}={_encode(value)}" for name, value in request.query))
    headers = "".join(
        f"{name}:{_SPACES.sub(' ', request.headers.get(name, '').strip())}\n"
        for name in signed_headers
    )
    payload = (
        request.headers.get("x-amz-content-sha256") or hashlib.sha256(request.body).hexdigest()
    )
    return "\n".join(
        [request.method.upper(), path, query, headers, ";".join(signed_headers), payload]
    )


def _request_date(headers: Mapping[str, str]) -> tuple[datetime, str]:
    text = headers.get("x-amz-date", "")
    if not text:
        raise SigV4Error("IncompleteSignature", "Authorization requires an X-Amz-Date header", 400)
    try:
        when = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SigV4Error(
            "IncompleteSignature", f"X-Amz-Date {text!r} is not of the form YYYYMMDDTHHMMSSZ", 400
        ) from None
    return when, text


def verify(
    request: SignedRequest, secret_for: Callable[[str], str | None], now: datetime
) -> Verified:
    """Check the request's signature. `secret_for(access_key_id)` returns the secret access
    key, or None when the key is unknown or revoked. Raises SigV4Error."""
    header = request.headers.get("authorization", "")
    if not header:
        raise SigV4Error("MissingAuthenticationToken", "Request is missing Authentication Token")
    match = _AUTH.match(header)
    if not match:
        raise SigV4Error(
            "IncompleteSignature",
            "Authorization header must be 'AWS4-HMAC-SHA256 Credential=..., "
            "SignedHeaders=..., Signature=...'",
            400,
        )
    parts = match.group("credential").split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise SigV4Error(
            "IncompleteSignature",
            "Credential must be ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request",
            400,
        )
    access_key, day, region, service = parts[:4]
    signed = match.group("headers").split(";")
    if signed != sorted(set(signed)) or "host" not in signed:
        raise SigV4Error(
            "IncompleteSignature", "SignedHeaders must be sorted and include host", 400
        )
    if "x-amz-date" not in signed:
        raise SigV4Error("IncompleteSignature", "SignedHeaders must include x-amz-date", 400)
    when, amz_date = _request_date(request.headers)
    if amz_date[:8] != day:
        raise SigV4Error("SignatureDoesNotMatch", "Credential date does not match X-Amz-Date", 403)
    if abs(now - when) > MAX_SKEW:
        raise SigV4Error(
            "RequestExpired",
            f"Request has expired: signed at {amz_date}, more than 5 minutes from now",
            403,
        )
    secret = secret_for(access_key)
    if secret is None:
        raise SigV4Error(
            "InvalidClientTokenId", "The security token included in the request is invalid"
        )
    digest = hashlib.sha256(canonical_request(request, signed).encode("utf-8")).hexdigest()
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, digest])
    expected = hmac.new(
        signing_key(secret, day, region, service), to_sign.encode("utf-8"), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, match.group("signature")):
        raise SigV4Error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided",
        )
    return Verified(access_key, region, service, when, match.group("signature"))


class ReplayCache:
    """Signatures seen within the clock-skew window: the same signed request twice is refused
    (`RequestExpired` would catch it only after five minutes). Bounded in size."""

    def __init__(self, limit: int = 100_000) -> None:
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self._limit = limit

    def check(self, verified: Verified, now: datetime) -> None:
        horizon = now - 2 * MAX_SKEW
        while self._seen:
            oldest, seen = next(iter(self._seen.items()))
            if seen >= horizon and len(self._seen) < self._limit:
                break
            del self._seen[oldest]
        if verified.signature in self._seen:
            raise SigV4Error("RequestExpired", "This signed request was already used")
        self._seen[verified.signature] = now

    def forget(self, verified: Verified) -> None:
        """Let the same signed request in again (its first use changed nothing: it failed)."""
        self._seen.pop(verified.signature, None)


def query_pairs(query_string: str) -> list[tuple[str, str]]:
    """Decoded query parameters, keeping empty values (`?a&b=` -> [("a",""), ("b","")])."""
    pairs = []
    for item in query_string.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((unquote(name.replace("+", "%20")), unquote(value.replace("+", "%20"))))
    return pairs
