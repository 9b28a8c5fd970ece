"""Sender, Resent-From and Resent-Sender are checked like From against the project's verified
identities on the submission doors (smtplib over STARTTLS, a real server)."""

from __future__ import annotations

import pytest

from .conftest import Env

UNVERIFIED = (
    b"5.7.1 Message rejected: Email address is not verified. "
    b"The following identities failed the check: "
)


def send(env: Env, headers: str) -> tuple[int, bytes]:
    data = f"From: app@example.com\r\n{headers}To: r@example.net\r\nSubject: x\r\n\r\nHi\r\n"
    with env.smtp() as client:
        client.mail("app@example.com")
        client.rcpt("r@example.net")
        return client.data(data.encode())


@pytest.mark.parametrize(
    ("headers", "failed"),
    [
        ("Sender: ceo@other-tenant.test\r\n", b"ceo@other-tenant.test"),
        ("Resent-From: security@paypal.example\r\n", b"security@paypal.example"),
        (
            "Resent-From: app@example.com, x@evil.example\r\nResent-Sender: y@evil.example\r\n",
            b"x@evil.example, y@evil.example",
        ),
        (
            "Resent-From: someone@gmail.example\r\nResent-Date: Mon, 1 Jun 2026 10:00:00 +0000\r\n"
            "Resent-From: z@evil.example\r\n",
            b"z@evil.example",
        ),
    ],
)
def test_unverified_author_headers_are_refused(env: Env, headers: str, failed: bytes) -> None:
    code, text = send(env, headers)
    assert (code, text) == (554, UNVERIFIED + failed)
    assert env.messages() == []


def test_verified_author_headers_pass(env: Env) -> None:
    code, text = send(
        env,
        "Sender: someone@gmail.example\r\nResent-From: app@ed.example\r\n"
        "Resent-Sender: news@news.example.com\r\n",
    )
    assert code == 250, text
    assert len(env.messages()) == 1


def test_unparseable_resent_from_is_refused(env: Env) -> None:
    code, text = send(env, "Resent-From: just some words\r\n")
    assert code == 550 and text.startswith(b"5.6.0 A Resent-From header field"), text
