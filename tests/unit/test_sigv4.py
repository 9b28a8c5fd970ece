"""SigV4 verification against requests signed by botocore itself (the signer every AWS SDK
for Python uses), so the canonical form is AWS's, not ours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from postroom.api.sigv4 import ReplayCache, SignedRequest, SigV4Error, query_pairs, verify

KEY, SECRET = "PRAKIDEXAMPLE0001", "s3cr3t/with+chars=="
NOW = datetime.now(UTC)  # botocore signs with the system clock: see fresh_now


@pytest.fixture(autouse=True)
def fresh_now() -> None:
    """Read the clock when each test starts, not when the module is imported: in a full run
    the tests start many minutes after collection, beyond the 5 minutes of allowed skew."""
    global NOW
    NOW = datetime.now(UTC)


def signed(
    method: str = "POST",
    url: str = "http://127.0.0.1:8025/v2/email/outbound-emails",
    body: bytes = b'{"Content": {}}',
    headers: dict[str, str] | None = None,
    secret: str = SECRET,
) -> SignedRequest:
    """A request signed by botocore now (it reads the system clock)."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials(KEY, secret), "ses", "eu-west-1").add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    return SignedRequest(
        method=prepared.method,
        raw_path=parts.path,
        query=query_pairs(parts.query),
        headers={k.lower(): v for k, v in prepared.headers.items()} | {"host": parts.netloc},
        body=prepared.body or b"",
    )


def secrets(access_key: str) -> str | None:
    return SECRET if access_key == KEY else None


def test_botocore_signatures_verify() -> None:
    verified = verify(signed(), secrets, NOW)
    assert (verified.access_key_id, verified.region, verified.service) == (KEY, "eu-west-1", "ses")


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8025/v2/email/identities/a%40b.example",
        "http://localhost:8025/v2/email/suppression/addresses?PageSize=10&Reasons=BOUNCE&Reasons=COMPLAINT",
        "http://localhost:8025/?Action=SendEmail&Source=a%2Bb%40x.example&Message.Subject.Data=h%C3%A9llo%20there",
    ],
)
def test_paths_and_queries_with_escapes(url: str) -> None:
    verify(signed(method="GET", url=url, body=b""), secrets, NOW)


def test_tampering_is_refused() -> None:
    request = signed()
    for changed in (
        SignedRequest(request.method, request.raw_path, request.query, request.headers, b"{}"),
        SignedRequest("PUT", request.raw_path, request.query, request.headers, request.body),
        SignedRequest(request.method, "/v2/other", request.query, request.headers, request.body),
        SignedRequest(
            request.method,
            request.raw_path,
            request.query,
            {**request.headers, "host": "evil.example"},
            request.body,
        ),
    ):
        with pytest.raises(SigV4Error) as caught:
            verify(changed, secrets, NOW)
        assert caught.value.code == "SignatureDoesNotMatch"


def test_wrong_secret_unknown_key_and_missing_header() -> None:
    with pytest.raises(SigV4Error, match="does not match"):
        verify(signed(secret="other"), secrets, NOW)
    with pytest.raises(SigV4Error) as caught:
        verify(signed(), lambda key: None, NOW)
    assert caught.value.code == "InvalidClientTokenId"
    request = signed()
    headers = {k: v for k, v in request.headers.items() if k != "authorization"}
    with pytest.raises(SigV4Error) as caught:
        verify(
            SignedRequest(request.method, request.raw_path, request.query, headers, request.body),
            secrets,
            NOW,
        )
    assert caught.value.code == "MissingAuthenticationToken"


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 Credential=K/20261203/r/ses/aws4_request, SignedHeaders=x-amz-date, Signature="
        + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=K/20261203/r/ses, SignedHeaders=host;x-amz-date, Signature="
        + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=K/20261203/r/ses/aws4_request, SignedHeaders=x-amz-date;host, Signature="
        + "0" * 64,
        "Basic dXNlcjpwYXNz",
    ],
)
def test_malformed_authorization(authorization: str) -> None:
    request = signed()
    headers = {**request.headers, "authorization": authorization}
    with pytest.raises(SigV4Error) as caught:
        verify(
            SignedRequest(request.method, request.raw_path, request.query, headers, request.body),
            secrets,
            NOW,
        )
    assert caught.value.code == "IncompleteSignature"


def test_expired_and_replayed_requests() -> None:
    request = signed()
    for skew in (timedelta(minutes=6), -timedelta(minutes=6)):
        with pytest.raises(SigV4Error) as caught:
            verify(request, secrets, NOW + skew)
        assert caught.value.code == "RequestExpired"
    verify(request, secrets, NOW + timedelta(minutes=4))
    cache = ReplayCache()
    fresh = verify(signed(), secrets, NOW)
    cache.check(fresh, NOW)
    with pytest.raises(SigV4Error, match="already used"):
        cache.check(verify(signed(), secrets, NOW), NOW + timedelta(seconds=1))
    later = NOW + timedelta(minutes=11)  # beyond the window the entry is forgotten
    cache.check(fresh, later)
