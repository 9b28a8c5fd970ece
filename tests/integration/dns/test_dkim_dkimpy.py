"""Every signature is verified by dkimpy, which fetches the key from the test DNS server.

The key record is published at `<selector>._domainkey.<domain>` in `dns_zone`; dkimpy looks it
up over UDP/TCP on 127.0.0.1 (tests/dnszone.py's dnsfunc), exactly as a receiver would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from postroom.core.clock import FakeClock
from postroom.dns.dkim import (
    DkimSigner,
    PrivateKey,
    dated_selector,
    dns_record,
    dns_record_name,
    generate_ed25519,
    generate_rsa,
    load_private_key,
)
from tests.dnszone import DnsZone, dkimpy_verify

DOMAIN = "example.com"
WHEN = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)  # past: dkimpy refuses t= in the future

_KEYS: dict[str, PrivateKey] = {}


def key_for(algorithm: str) -> PrivateKey:
    if algorithm not in _KEYS:
        _KEYS[algorithm] = generate_rsa(2048) if algorithm == "rsa" else generate_ed25519()
    return _KEYS[algorithm]


def publish(zone: DnsZone, key: PrivateKey, selector: str, domain: str = DOMAIN) -> None:
    zone.add_txt(dns_record_name(selector, domain), dns_record(key))


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


MESSAGES: dict[str, bytes] = {
    "plain-ascii": crlf(
        "From: Alice <alice@example.com>\n"
        "To: Bob <bob@example.net>\n"
        "Subject: Quarterly report\n"
        "Date: Sun, 1 Jun 2025 12:00:00 +0000\n"
        "Message-ID: <r1@example.com>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "Hello Bob,\n\nthe report is attached.  Regards\n"
    ),
    "8bit-body": crlf(
        "From: alice@example.com\n"
        "To: bob@example.net\n"
        "Subject: Umlauts\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Grüße aus Köln — ça va?  日本語\t \n"
    )
    + b"latin-1 too: \xe9\xe8\xff\r\n",
    "utf8-headers": crlf(
        "From: Jörg Müller <jörg@example.com>\n"
        "To: 山田太郎 <yamada@例え.jp>\n"
        "Cc: Zoë <zoë@example.net>\n"
        "Subject: Über 日本語 — SMTPUTF8\n"
        "Reply-To: jörg@example.com\n"
        "\n"
        "Bonjour\n"
    ),
    "folded-headers": crlf(
        "From: Alice\n <alice@example.com>\n"
        "To: one@example.net,\n\ttwo@example.net,\n   three@example.net\n"
        "Subject: a subject that is long enough\n   to be folded\tover\n\t several lines  \n"
        "References: <a@example.com>\n <b@example.com>\n <c@example.com>\n"
        "List-Unsubscribe: <https://example.com/u/1>,\n <mailto:u@example.com>\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
        "\n"
        "body\n"
    ),
    "trailing-blank-lines": crlf(
        "From: alice@example.com\nTo: bob@example.net\nSubject: blanks\n\nline  \n\n\n  \n\n"
    ),
    "no-trailing-crlf": crlf("From: alice@example.com\nTo: bob@example.net\n\nlast line"),
    "empty-body": crlf("From: alice@example.com\nSubject: nothing\n\n"),
    "headers-only": crlf("From: alice@example.com\nSubject: no body at all\n"),
    "unsigned-headers-too": crlf(
        "Received: from client by mx; Sun, 1 Jun 2025 12:00:00 +0000\n"
        "Return-Path: <bounce@example.com>\n"
        "X-Mailer: postroom\n"
        "From: alice@example.com\n"
        "To: bob@example.net\n"
        "Bcc: hidden@example.net\n"
        "\n"
        "x\n"
    ),
}

ALGORITHMS = ["rsa", "ed25519"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_dkimpy_verifies(dns_zone: DnsZone, algorithm: str, name: str) -> None:
    key = key_for(algorithm)
    selector = dated_selector(WHEN)
    publish(dns_zone, key, selector)
    message = MESSAGES[name]
    signed = DkimSigner(DOMAIN, selector, key, FakeClock(WHEN)).sign(message) + message
    assert dkimpy_verify(signed, dns_zone)
    # ... also as sent over SMTP, where the client ends the data with CRLF.
    if not signed.endswith(b"\r\n"):
        assert dkimpy_verify(signed + b"\r\n", dns_zone)
    # dkimpy fetched the key from the server.
    assert any(q.name == f"{selector}._domainkey.{DOMAIN}" for q in dns_zone.queries)


# Note: dkimpy itself counts one extra From when verifying, so the From tamperings below would
# fail with it even without over-signing; the unit tests pin that h= over-signs From and check
# over-signing of other fields (which dkimpy does not special-case) against dkimpy.


def _change_from(m: bytes) -> bytes:
    return m.replace(b"From: Alice <alice@example.com>", b"From: Alice <alice@evil.test>")


def _from_added_on_top(m: bytes) -> bytes:
    # The tampered message keeps the signature header first.
    sig_end = m.index(b"\r\nFrom:") + 2
    return m[:sig_end] + b"From: Mallory <ceo@example.com>\r\n" + m[sig_end:]


def _from_added_below(m: bytes) -> bytes:
    return m.replace(b"\r\n\r\n", b"\r\nFrom: Mallory <ceo@example.com>\r\n\r\n", 1)


def _change_body(m: bytes) -> bytes:
    return m.replace(b"the report is attached", b"the report is attacked")


def _append_to_body(m: bytes) -> bytes:
    return m + b"P.S. wire the money\r\n"


def _change_subject(m: bytes) -> bytes:
    return m.replace(b"Subject: Quarterly report", b"Subject: Quarterly report!")


def _change_date(m: bytes) -> bytes:
    return m.replace(b"12:00:00", b"12:00:01")


TAMPERINGS: dict[str, Callable[[bytes], bytes]] = {
    "from-changed": _change_from,
    "second-from-on-top": _from_added_on_top,
    "second-from-below": _from_added_below,
    "body-changed": _change_body,
    "body-appended": _append_to_body,
    "subject-changed": _change_subject,
    "date-changed": _change_date,
}

HARMLESS: dict[str, Callable[[bytes], bytes]] = {
    "received-added": lambda m: b"Received: from relay by mx2\r\n" + m,
    "trailing-blank-lines-added": lambda m: m + b"\r\n\r\n",
    "whitespace-changed-in-body": lambda m: m.replace(b"Hello Bob,", b"Hello   Bob,\t"),
    "header-refolded": lambda m: m.replace(
        b"Subject: Quarterly report", b"Subject:   Quarterly\r\n\treport"
    ),
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_tampering_breaks_the_signature(dns_zone: DnsZone, algorithm: str, tampering: str) -> None:
    key = key_for(algorithm)
    publish(dns_zone, key, "sel")
    message = MESSAGES["plain-ascii"]
    signed = DkimSigner(DOMAIN, "sel", key, FakeClock(WHEN)).sign(message) + message
    assert dkimpy_verify(signed, dns_zone)
    tampered = TAMPERINGS[tampering](signed)
    assert tampered != signed
    assert not dkimpy_verify(tampered, dns_zone)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("change", sorted(HARMLESS))
def test_relaxed_changes_keep_the_signature(dns_zone: DnsZone, algorithm: str, change: str) -> None:
    key = key_for(algorithm)
    publish(dns_zone, key, "sel")
    message = MESSAGES["plain-ascii"]
    signed = DkimSigner(DOMAIN, "sel", key, FakeClock(WHEN)).sign(message) + message
    changed = HARMLESS[change](signed)
    assert changed != signed
    assert dkimpy_verify(changed, dns_zone)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_wrong_or_missing_key_in_dns_fails(dns_zone: DnsZone, algorithm: str) -> None:
    key = key_for(algorithm)
    message = MESSAGES["plain-ascii"]
    signed = DkimSigner(DOMAIN, "sel", key, FakeClock(WHEN)).sign(message) + message
    assert not dkimpy_verify(signed, dns_zone)  # nothing published
    other: PrivateKey = generate_rsa() if algorithm == "rsa" else generate_ed25519()
    publish(dns_zone, other, "sel")
    assert not dkimpy_verify(signed, dns_zone)
    dns_zone.clear()
    dns_zone.add_txt("sel._domainkey.example.com", f"v=DKIM1; k={algorithm}; p=")  # revoked
    assert not dkimpy_verify(signed, dns_zone)
    dns_zone.clear()
    publish(dns_zone, key, "sel")
    assert dkimpy_verify(signed, dns_zone)


def test_rsa_and_ed25519_signatures_side_by_side(dns_zone: DnsZone) -> None:
    """Dual signing (RFC 8463 recommends it): two selectors, both signatures verify."""
    rsa_key, ed_key = key_for("rsa"), key_for("ed25519")
    publish(dns_zone, rsa_key, "pr20250601")
    publish(dns_zone, ed_key, "pr20250601e")
    message = MESSAGES["utf8-headers"]
    ed_sig = DkimSigner(DOMAIN, "pr20250601e", ed_key, FakeClock(WHEN)).sign(message)
    rsa_sig = DkimSigner(DOMAIN, "pr20250601", rsa_key, FakeClock(WHEN)).sign(message)
    assert dkimpy_verify(rsa_sig + ed_sig + message, dns_zone)  # the first (RSA) signature
    assert dkimpy_verify(ed_sig + rsa_sig + message, dns_zone)  # the first (Ed25519) signature


def test_user_supplied_pem_key_signs(dns_zone: DnsZone) -> None:
    from cryptography.hazmat.primitives import serialization

    original = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    pem = original.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    key = load_private_key(pem)
    dns_zone.add_txt("imported._domainkey.example.com", dns_record(original))
    message = MESSAGES["plain-ascii"]
    signed = DkimSigner(DOMAIN, "imported", key, FakeClock(WHEN)).sign(message) + message
    assert dkimpy_verify(signed, dns_zone)


def test_subdomain_and_idn_domains(dns_zone: DnsZone) -> None:
    key = key_for("ed25519")
    for domain in ("mail.example.com", "bücher.example"):
        publish(dns_zone, key, "sel", domain)
        message = crlf(f"From: shop@{domain}\nSubject: order\n\nthanks\n")
        signed = DkimSigner(domain, "sel", key, FakeClock(WHEN)).sign(message) + message
        assert dkimpy_verify(signed, dns_zone)


def test_expiry_is_honoured_by_the_verifier(dns_zone: DnsZone) -> None:
    key = key_for("ed25519")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    publish(dns_zone, key, "sel")
    message = MESSAGES["plain-ascii"]
    recent = FakeClock(datetime.now(UTC) - timedelta(hours=1))
    fresh = DkimSigner(DOMAIN, "sel", key, recent, expire_after=timedelta(days=1)).sign(message)
    assert dkimpy_verify(fresh + message, dns_zone)
    old = FakeClock(datetime.now(UTC) - timedelta(days=3))
    stale = DkimSigner(DOMAIN, "sel", key, old, expire_after=timedelta(days=1)).sign(message)
    assert not dkimpy_verify(stale + message, dns_zone)
