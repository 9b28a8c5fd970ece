"""A live project's recipients that would make the MTA probe internal networks (IP literals,
bare local parts, loopback and private names) are refused at RCPT on the submission doors with
553 5.1.2, and by the pipeline for the HTTP sending door (400), unless --routes routes the
domain; a capture project takes them as before. Real server, smtplib and httpx."""

from __future__ import annotations

import smtplib
from pathlib import Path

import trustme

from tests.dnszone import DnsZone

from .conftest import SANDBOX_PASSWORD, Env, start_env
from .test_http_send import body, post, send_key

REFUSED = [
    "user@[192.0.2.1]",
    "user@[127.0.0.1]",
    "user@[IPv6:::1]",
    "postmaster",
    "root@localhost",
    "admin@LOCALHOST",
    "x@api.localhost",
    "printer@office.local",
    "ops@db.internal",
    "nas@router.home.arpa",
    "u@intranet",
]


def rcpt(client: smtplib.SMTP, address: str) -> tuple[int, bytes]:
    client.rset()
    code, _ = client.mail("app@example.com")
    assert code == 250
    return client.rcpt(address)


def test_live_project_refuses_private_destinations_at_rcpt(env: Env) -> None:
    with env.smtp() as client:
        for address in REFUSED:
            code, text = rcpt(client, address)
            assert code == 553, (address, text)
            assert text.startswith(b"5.1.2 Recipient <" + address.encode() + b">"), text
        # the session goes on: an ordinary recipient is still taken, and the message holds
        # only that one
        client.rset()
        client.mail("app@example.com")
        assert client.rcpt("user@[192.0.2.1]")[0] == 553
        assert client.rcpt("someone@example.net")[0] == 250
        client.data(b"From: app@example.com\r\nSubject: x\r\n\r\nhi\r\n")
    [record] = env.messages()
    assert list(record.envelope.recipients) == ["someone@example.net"]


def test_live_project_refuses_them_over_implicit_tls_too(env: Env) -> None:
    client = smtplib.SMTP_SSL(
        "127.0.0.1", env.submissions_port, context=env.client_context(), timeout=30
    )
    with client:
        client.login("app", "prs_live-password-0123456789abcdef")
        code, text = rcpt(client, "user@[10.0.0.1]")
        assert (code, text[:5]) == (553, b"5.1.2")


def test_capture_project_takes_any_recipient(env: Env) -> None:
    with env.smtp("sandbox", SANDBOX_PASSWORD) as client:
        client.mail("app@sandbox.example")
        for address in REFUSED:
            assert client.rcpt(address)[0] == 250, address
        client.data(b"From: app@sandbox.example\r\nSubject: x\r\n\r\nhi\r\n")
    [record] = env.messages("sandbox")
    assert len(record.envelope.recipients) == len(REFUSED)


def test_a_route_allows_its_domain(tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone) -> None:
    env = start_env(
        tmp_path, ca, dns_zone, routes="db.internal=smtp+plain://127.0.0.1:2525", delivery=False
    )
    try:
        with env.smtp() as client:
            assert rcpt(client, "ops@db.internal")[0] == 250
            assert rcpt(client, "ops@DB.Internal")[0] == 250
            # only that domain: its neighbours and subdomains stay refused
            assert rcpt(client, "ops@other.internal")[0] == 553
            assert rcpt(client, "ops@x.db.internal")[0] == 553
    finally:
        env.server.stop()


async def test_http_send_of_a_live_project_refuses_them(env: Env) -> None:
    token = send_key(env, "acme")
    response = await post(env, token, body(To=[{"Email": "root@localhost"}]))
    assert response.status_code == 400, response.text
    assert response.json()["Field"] == "To"
    assert "root@localhost" in response.json()["Error"]
    assert env.messages() == []
    captured = await post(env, send_key(env, "sandbox"), body(To=[{"Email": "root@localhost"}]))
    assert captured.status_code == 200, captured.text


def test_ip_credential_sessions_are_checked_too(env: Env) -> None:
    env.add_ip_credential("127.0.0.0/8")
    with smtplib.SMTP("127.0.0.1", env.submission_port, timeout=30) as client:
        client.ehlo()
        code, text = rcpt(client, "user@[192.0.2.1]")
        assert (code, text[:5]) == (553, b"5.1.2")
