"""The inbound MX door on the real server (`--mx` on 127.0.0.1), driven with smtplib over real
sockets: every relay trick gets 550 5.7.1 (or 501 5.1.3 where the address is bad syntax before
the door is asked); the projects' verified domains and their return-path domains are taken;
mail for a hosted domain is stored in its project and never relayed, even for a live project;
STARTTLS offers the configured certificate."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from postroom.config import HostPort
from tests.dnszone import DnsZone

from .conftest import Env, start_env

MESSAGE = b"From: Pat <pat@elsewhere.example>\r\nTo: help@example.com\r\nSubject: Hi\r\n\r\nHi.\r\n"


@pytest.fixture
def mx_env(tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone) -> Iterator[Env]:
    environment = start_env(tmp_path, ca, dns_zone, mx=HostPort("127.0.0.1", 0))
    try:
        yield environment
    finally:
        environment.server.stop()


def rcpt(env: Env, path: str, tls: bool = False) -> tuple[int, str]:
    """One RCPT TO:`path` (sent as written, not rewritten by smtplib) in a fresh session."""
    with smtplib.SMTP("127.0.0.1", env.server.app.mx_port, timeout=30) as client:
        client.ehlo("mta.elsewhere.example")
        if tls:
            client.starttls(context=env.client_context())
            client.ehlo("mta.elsewhere.example")
        code, _ = client.docmd("MAIL", "FROM:<>")
        assert code == 250
        code, text = client.docmd("RCPT", f"TO:{path}")
        return code, text.decode()


RELAY_TRICKS = [
    "<user@elsewhere.example>",  # plainly somebody else's domain
    "<USER@ELSEWHERE.EXAMPLE>",  # case
    "<user%elsewhere.example@example.com>",  # percent hack through a hosted domain
    "<elsewhere.example!user@example.com>",  # bang path
    '<"user@elsewhere.example"@example.com>',  # quoted local part with @
    '<"user%elsewhere.example"@example.com>',  # quoted percent hack
    "<@example.com:user@elsewhere.example>",  # source route through a hosted domain
    "<@example.com,@ed.example:user@elsewhere.example>",  # longer source route
    "<user@[127.0.0.1]>",  # IP literal (even our own address)
    "<user@[IPv6:::1]>",  # IPv6 literal
    "<postmaster>",  # no domain: nothing to host
    "<user@sub.example.com>",  # a subdomain of a hosted domain is not hosted
    "<user@example.com.elsewhere.example>",  # a hosted name as a label of another
    "<user@pending.example>",  # a domain not yet verified
    "<user@rp.elsewhere.example>",  # a return-path label on a foreign domain
    "<bounces+aaaaaaaaaaaaa@elsewhere.example>",  # VERP-shaped, foreign domain
]


def test_every_relay_trick_is_refused_with_550_5_7_1(mx_env: Env) -> None:
    for path in RELAY_TRICKS:
        code, text = rcpt(mx_env, path)
        assert (code, text[:5]) == (550, "5.7.1"), path
        assert "Relay access denied" in text, path


@pytest.mark.parametrize("path", ["<user@elsewhere.example.>", "<user@example.com.>"])
def test_a_trailing_dot_is_bad_syntax_before_the_door(mx_env: Env, path: str) -> None:
    code, text = rcpt(mx_env, path)
    assert (code, text[:5]) == (501, "5.1.3")


def test_an_address_at_a_bounce_domain_that_is_no_return_path_is_unknown(mx_env: Env) -> None:
    for path in ("<bounces+aaaaaaaaaaaaa@rp.example.com>", "<someone@rp.example.com>"):
        code, text = rcpt(mx_env, path)
        assert (code, text[:5]) == (550, "5.1.1"), path


def test_hosted_domains_and_postmaster_of_a_return_path_domain_are_taken(mx_env: Env) -> None:
    for path in (
        "<help@example.com>",
        "<Help@EXAMPLE.COM>",
        "<team@news.example.com>",
        "<x@xn--bcher-kva.example>",
        "<postmaster@rp.example.com>",
        "<someone@sandbox.example>",
    ):
        code, _ = rcpt(mx_env, path)
        assert code == 250, path


def test_hosted_mail_is_stored_in_its_project_and_never_relayed(mx_env: Env) -> None:
    with smtplib.SMTP("127.0.0.1", mx_env.server.app.mx_port, timeout=30) as client:
        client.starttls(context=mx_env.client_context())
        refused = client.sendmail(
            "pat@elsewhere.example",
            ["help@example.com", "someone@sandbox.example"],
            MESSAGE,
        )
        assert refused == {}
    (acme,) = mx_env.messages("acme")
    assert acme.envelope.recipients == ("help@example.com",)
    assert acme.status == "captured"  # stored, never relayed: acme is a live project
    assert mx_env.queue(acme.id) == []
    assert b"Subject: Hi" in mx_env.raw(acme)
    (sandbox,) = mx_env.messages("sandbox")
    assert sandbox.envelope.recipients == ("someone@sandbox.example",)


def test_a_refused_recipient_leaves_the_others_of_the_transaction(mx_env: Env) -> None:
    with smtplib.SMTP("127.0.0.1", mx_env.server.app.mx_port, timeout=30) as client:
        refused = client.sendmail(
            "pat@elsewhere.example", ["help@example.com", "victim@elsewhere.example"], MESSAGE
        )
    assert refused["victim@elsewhere.example"][0] == 550
    (stored,) = mx_env.messages("acme")
    assert stored.envelope.recipients == ("help@example.com",)


def test_starttls_uses_the_configured_certificate_and_no_auth_is_offered(mx_env: Env) -> None:
    with smtplib.SMTP("127.0.0.1", mx_env.server.app.mx_port, timeout=30) as client:
        client.ehlo("mta.elsewhere.example")
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        client.starttls(context=mx_env.client_context())  # verifies against the test CA
        sock = client.sock
        assert sock is not None
        peer = sock.getpeercert()  # type: ignore[attr-defined]
        names = [value for kind, value in peer["subjectAltName"] if kind == "IP Address"]
        assert "127.0.0.1" in names
    code, text = rcpt(mx_env, "<user@elsewhere.example>", tls=True)
    assert (code, text[:5]) == (550, "5.7.1")  # TLS changes nothing about relaying


def test_several_transactions_in_one_session(mx_env: Env) -> None:
    with smtplib.SMTP("127.0.0.1", mx_env.server.app.mx_port, timeout=30) as client:
        assert client.sendmail("pat@elsewhere.example", ["help@example.com"], MESSAGE) == {}
        assert client.sendmail("pat@elsewhere.example", ["x@sandbox.example"], MESSAGE) == {}
        client.rset()
        refused = client.sendmail(
            "pat@elsewhere.example", ["victim@elsewhere.example", "team@example.com"], MESSAGE
        )
        assert list(refused) == ["victim@elsewhere.example"]
    assert sorted(m.envelope.recipients for m in mx_env.messages("acme")) == [
        ("help@example.com",),
        ("team@example.com",),
    ]
    assert [m.envelope.recipients for m in mx_env.messages("sandbox")] == [("x@sandbox.example",)]
