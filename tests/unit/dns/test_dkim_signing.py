"""DKIM canonicalisation, header selection, signature layout, keys and records.

Every signature made here is also checked by dkimpy (an independent implementation) through an
in-memory key lookup; tests/integration/dns/ does the same through a real DNS server.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, PostroomError
from postroom.dns.dkim import (
    DEFAULT_HEADERS,
    DkimError,
    DkimKeyError,
    DkimSigner,
    PrivateKey,
    canonicalize_body_relaxed,
    canonicalize_header_relaxed,
    dated_selector,
    dns_record,
    dns_record_name,
    dump_private_key,
    generate_ed25519,
    generate_rsa,
    key_algorithm,
    key_type,
    load_private_key,
    parse_tag_list,
    public_key_b64,
    sign_message,
)
from tests.dnszone import _ensure_dkimpy_ed25519

WHEN = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)  # in the past: dkimpy rejects future t=

MESSAGE = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.net>\r\n"
    b"Subject: Hello\r\n"
    b"Date: Sun, 1 Jun 2025 12:00:00 +0000\r\n"
    b"Message-ID: <m1@example.com>\r\n"
    b"X-Mailer: test\r\n"
    b"\r\n"
    b"Hello Bob.\r\n"
)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return generate_rsa(2048)


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return generate_ed25519()


def tags_of(header: bytes) -> dict[str, str]:
    name, _, value = header.partition(b":")
    assert name == b"DKIM-Signature"
    return {k: re.sub(r"\s+", "", v) for k, v in parse_tag_list(value.decode()).items()}


def dkimpy_ok(
    signed: bytes, key: PrivateKey, selector: str = "sel", domain: str = "example.com"
) -> bool:
    _ensure_dkimpy_ed25519()
    record = dns_record(key).encode()
    wanted = f"{selector}._domainkey.{domain}.".encode()

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        return record if name == wanted else None

    return bool(dkim.verify(signed, dnsfunc=dnsfunc))


# -- canonicalisation (RFC 6376 3.4) ----------------------------------------------------------


def test_rfc6376_example_relaxed() -> None:
    """RFC 6376 3.4.5."""
    assert canonicalize_header_relaxed(b"A", b" X") == b"a:X\r\n"
    assert canonicalize_header_relaxed(b"B ", b" Y\t\r\n\tZ  ") == b"b:Y Z\r\n"
    assert canonicalize_body_relaxed(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"


@pytest.mark.parametrize(
    ("body", "canonical"),
    [
        (b"", b""),
        (b"\r\n", b""),
        (b"\r\n\r\n", b""),
        (b"  \r\n\t\r\n", b""),
        (b"abc", b"abc\r\n"),
        (b"abc  ", b"abc\r\n"),
        (b"abc\r\n", b"abc\r\n"),
        (b"abc\r\n\r\n \r\n", b"abc\r\n"),
        (b"\r\nabc\r\n", b"\r\nabc\r\n"),
        (b"a\t\tb  c \r\n", b"a b c\r\n"),
        (b"  lead\r\n", b" lead\r\n"),
        ("größe  \r\n".encode(), "größe\r\n".encode()),
        (b"\xff\xfe \t\xfd\r\n", b"\xff\xfe \xfd\r\n"),
    ],
)
def test_relaxed_body(body: bytes, canonical: bytes) -> None:
    assert canonicalize_body_relaxed(body) == canonical


def test_relaxed_header_keeps_8bit_bytes() -> None:
    value = " =?utf-8?q?x?=  Grüße\r\n  aus   Köln ".encode()
    assert canonicalize_header_relaxed(b"Subject", value) == (
        "subject:=?utf-8?q?x?= Grüße aus Köln\r\n".encode()
    )


# -- signature layout -------------------------------------------------------------------------


def test_signature_tags(rsa_key: rsa.RSAPrivateKey) -> None:
    signer = DkimSigner("Example.COM.", "sel", rsa_key, FakeClock(WHEN))
    header = signer.sign(MESSAGE)
    assert header.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert header.endswith(b"\r\n") and header.count(b"\r\n") == header.count(b"\r\n\t") + 1
    tags = tags_of(header)
    assert tags["d"] == "example.com"
    assert tags["s"] == "sel"
    assert tags["t"] == str(int(WHEN.timestamp()))
    assert "x" not in tags and "l" not in tags and "i" not in tags
    # From over-signed, every other present default header once, unsigned ones absent.
    assert tags["h"] == "from:from:subject:date:message-id:to"
    assert dkimpy_ok(header + MESSAGE, rsa_key)


def test_folded_lines_stay_short(rsa_key: rsa.RSAPrivateKey) -> None:
    header = DkimSigner("example.com", "sel", generate_rsa(4096), FakeClock(WHEN)).sign(MESSAGE)
    lines = header.split(b"\r\n")[:-1]
    assert len(lines) > 5
    assert all(len(line) <= 78 for line in lines)
    assert all(line.startswith(b"\t") for line in lines[1:])


def test_body_hash_is_of_the_relaxed_body(ed_key: ed25519.Ed25519PrivateKey) -> None:
    import hashlib

    header = DkimSigner("example.com", "sel", ed_key, FakeClock(WHEN)).sign(MESSAGE)
    expected = base64.b64encode(hashlib.sha256(b"Hello Bob.\r\n").digest()).decode()
    assert tags_of(header)["bh"] == expected


def test_timestamp_follows_the_clock(ed_key: ed25519.Ed25519PrivateKey) -> None:
    clock = FakeClock(WHEN)
    signer = DkimSigner("example.com", "sel", ed_key, clock)
    first = tags_of(signer.sign(MESSAGE))["t"]
    clock.advance(3600)
    assert int(tags_of(signer.sign(MESSAGE))["t"]) == int(first) + 3600


def test_expiry_tag(ed_key: ed25519.Ed25519PrivateKey) -> None:
    signer = DkimSigner(
        "example.com", "sel", ed_key, FakeClock(WHEN), expire_after=timedelta(days=7)
    )
    tags = tags_of(signer.sign(MESSAGE))
    assert int(tags["x"]) == int(tags["t"]) + 7 * 86400


def test_every_instance_is_signed_and_oversign_is_configurable(
    ed_key: ed25519.Ed25519PrivateKey,
) -> None:
    message = (
        b"Received: from a\r\nFrom: a@example.com\r\nTo: b@example.net\r\nTo: c@example.net\r\n"
        b"\r\nbody\r\n"
    )
    signer = DkimSigner(
        "example.com", "sel", ed_key, FakeClock(WHEN), oversign=("from", "reply-to", "to")
    )
    header = signer.sign(message)
    assert tags_of(header)["h"] == "from:from:reply-to:to:to:to"
    assert dkimpy_ok(header + message, ed_key)
    # Adding a Reply-To or a third To is now detected.
    assert not dkimpy_ok(
        header + message.replace(b"\r\n\r\n", b"\r\nReply-To: x@evil.test\r\n\r\n"), ed_key
    )
    assert not dkimpy_ok(header + b"To: x@evil.test\r\n" + message, ed_key)


def test_custom_header_list(ed_key: ed25519.Ed25519PrivateKey) -> None:
    signer = DkimSigner(
        "example.com",
        "sel",
        ed_key,
        FakeClock(WHEN),
        headers=["From", "X-Mailer", "subject", "from"],
    )
    assert signer.headers == ("from", "x-mailer", "subject")
    header = signer.sign(MESSAGE)
    assert tags_of(header)["h"] == "from:from:x-mailer:subject"
    assert dkimpy_ok(header + MESSAGE, ed_key)
    assert not dkimpy_ok(header + MESSAGE.replace(b"X-Mailer: test", b"X-Mailer: other"), ed_key)


def test_default_headers_cover_unsubscribe() -> None:
    for name in ("list-unsubscribe", "list-unsubscribe-post", "reply-to", "references", "cc"):
        assert name in DEFAULT_HEADERS
    for name in ("received", "return-path", "dkim-signature", "bcc"):
        assert name not in DEFAULT_HEADERS


def test_sign_message_shortcut(rsa_key: rsa.RSAPrivateKey) -> None:
    header = sign_message(
        MESSAGE, domain="example.com", selector="sel", key=rsa_key, clock=FakeClock(WHEN)
    )
    assert dkimpy_ok(header + MESSAGE, rsa_key)


def test_same_input_same_rsa_signature(rsa_key: rsa.RSAPrivateKey) -> None:
    signer = DkimSigner("example.com", "sel", rsa_key, FakeClock(WHEN))
    assert signer.sign(MESSAGE) == signer.sign(MESSAGE)  # PKCS#1 v1.5 is deterministic


def test_signer_repr_hides_the_key(rsa_key: rsa.RSAPrivateKey) -> None:
    text = repr(DkimSigner("example.com", "sel", rsa_key, FakeClock(WHEN)))
    assert "example.com" in text and "PRIVATE" not in text and "RSAPrivateKey" not in text


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        b"From: a@example.com\nSubject: x\n\nbody\n",
        b"From: a@example.com\r\nSubject: x\r\n\r\nbody\rmore\r\n",
        b"From: a@example.com\r\n\r\nbody\n",
    ],
)
def test_bare_line_endings_are_refused(ed_key: ed25519.Ed25519PrivateKey, message: bytes) -> None:
    with pytest.raises(DkimError, match="bare CR or LF"):
        DkimSigner("example.com", "sel", ed_key, FakeClock(WHEN)).sign(message)


@pytest.mark.parametrize(
    "message",
    [b"To: b@example.net\r\n\r\nbody\r\n", b"\r\nFrom: a@example.com\r\n", b"", b"X-From: a\r\n"],
)
def test_message_without_from_is_refused(ed_key: ed25519.Ed25519PrivateKey, message: bytes) -> None:
    with pytest.raises(DkimError, match="no From"):
        DkimSigner("example.com", "sel", ed_key, FakeClock(WHEN)).sign(message)
    assert issubclass(DkimError, PostroomError)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"domain": "not a domain"}, "domain"),
        ({"domain": "localhost"}, "domain"),
        ({"domain": "-bad.example.com"}, "domain"),
        ({"selector": "bad selector"}, "selector"),
        ({"selector": ""}, "selector"),
        ({"selector": "a..b"}, "selector"),
        ({"headers": ["to", "subject"]}, "headers"),
        ({"headers": ["from", "bad name"]}, "headers"),
        ({"expire_after": timedelta(0)}, "expire_after"),
    ],
)
def test_bad_signer_settings(
    ed_key: ed25519.Ed25519PrivateKey, kwargs: dict[str, object], field: str
) -> None:
    settings: dict[str, object] = {
        "domain": "example.com",
        "selector": "sel",
        "key": ed_key,
        "clock": FakeClock(WHEN),
    }
    settings.update(kwargs)
    with pytest.raises(InvalidInput) as info:
        DkimSigner(**settings)  # type: ignore[arg-type]
    assert info.value.field == field


def test_idn_domain_is_signed_as_a_labels(ed_key: ed25519.Ed25519PrivateKey) -> None:
    signer = DkimSigner("bücher.example", "sel", ed_key, FakeClock(WHEN))
    assert signer.domain == "xn--bcher-kva.example"
    assert dns_record_name("Sel", "Bücher.example.") == "sel._domainkey.xn--bcher-kva.example"


# -- keys and records -------------------------------------------------------------------------


def test_generated_keys(rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey) -> None:
    assert rsa_key.key_size == 2048
    assert key_type(rsa_key) == "rsa" and key_algorithm(rsa_key) == "rsa-sha256"
    assert key_type(ed_key) == "ed25519" and key_algorithm(ed_key) == "ed25519-sha256"
    assert generate_rsa(1024).key_size == 1024
    with pytest.raises(DkimKeyError):
        generate_rsa(512)


def test_dns_records(rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey) -> None:
    rsa_record = dns_record(rsa_key)
    assert rsa_record.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # SubjectPublicKeyInfo DER
    spki = serialization.load_der_public_key(base64.b64decode(parse_tag_list(rsa_record)["p"]))
    assert isinstance(spki, rsa.RSAPublicKey)
    assert spki.public_numbers() == rsa_key.public_key().public_numbers()
    ed_record = dns_record(ed_key)
    assert ed_record.startswith("v=DKIM1; k=ed25519; p=")
    raw = base64.b64decode(parse_tag_list(ed_record)["p"])
    assert raw == ed_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert public_key_b64(ed_key) == parse_tag_list(ed_record)["p"]


def test_pem_round_trip(rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey) -> None:
    for key in (rsa_key, ed_key):
        pem = dump_private_key(key)
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        loaded = load_private_key(pem)
        assert dns_record(loaded) == dns_record(key)
        assert dns_record(load_private_key(pem.decode())) == dns_record(key)


def test_load_user_supplied_keys(
    rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    pkcs1 = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert pkcs1.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert dns_record(load_private_key(b"\n  " + pkcs1 + b"\n\n")) == dns_record(rsa_key)

    encrypted = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    assert dns_record(load_private_key(encrypted, password=b"secret")) == dns_record(rsa_key)
    with pytest.raises(DkimKeyError, match="decrypted"):
        load_private_key(encrypted)

    der = rsa_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    wrapped = "\n".join(re.findall(".{1,64}", base64.b64encode(der).decode()))
    assert dns_record(load_private_key(wrapped)) == dns_record(rsa_key)

    seed = ed_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    assert dns_record(load_private_key(base64.b64encode(seed))) == dns_record(ed_key)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"not a key at all!", "neither PEM nor base64"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "cannot be read"),
        (base64.b64encode(b"x" * 40), "cannot be read"),
    ],
)
def test_unreadable_keys(data: bytes, message: str) -> None:
    with pytest.raises(DkimKeyError, match=message) as info:
        load_private_key(data)
    assert info.value.field == "private_key"


def weak_rsa_key() -> rsa.RSAPrivateKey:
    """A 776-bit RSA key (below RFC 8301's 1024-bit floor; cryptography will not generate one)."""
    p, q, e = 2**255 - 19, 2**521 - 1, 65537  # two well-known primes
    d = pow(e, -1, (p - 1) * (q - 1))
    public = rsa.RSAPublicNumbers(e, p * q)
    return rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), public
    ).private_key()


def test_public_key_ec_key_and_weak_rsa_are_refused() -> None:
    public_pem = (
        generate_ed25519()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(DkimKeyError, match="public key"):
        load_private_key(public_pem)
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(DkimKeyError, match="unsupported key type"):
        load_private_key(ec_pem)
    weak = weak_rsa_key()
    weak_pem = weak.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(DkimKeyError, match="776 bits"):
        load_private_key(weak_pem)
    with pytest.raises(DkimKeyError):
        DkimSigner("example.com", "sel", weak, FakeClock(WHEN))


def test_dated_selector() -> None:
    assert dated_selector(datetime(2026, 11, 29, tzinfo=UTC)) == "pr20261129"
    assert (
        dated_selector(datetime(2026, 1, 2, tzinfo=UTC), prefix="pm", suffix="e") == "pm20260102e"
    )
    with pytest.raises(InvalidInput):
        dated_selector(WHEN, prefix="bad prefix")


def test_parse_tag_list() -> None:
    assert parse_tag_list(" v = DKIM1 ;k=rsa; p=AB CD ;; junk ; t=y;") == {
        "v": "DKIM1",
        "k": "rsa",
        "p": "AB CD",
        "t": "y",
    }
