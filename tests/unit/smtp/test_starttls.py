from __future__ import annotations

import pytest

from postroom.core.types import TlsInfo
from postroom.smtp.protocol import Reply, StartTls

from .support import Client, make_policy

TLS = TlsInfo(version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256")


def tls_client(**overrides: object) -> Client:
    return Client(make_policy(starttls_available=True, **overrides), ehlo=True)


def test_starttls_replies_220_then_asks_for_the_upgrade() -> None:
    client = tls_client()
    assert client.feed(b"STARTTLS\r\n") == [
        Reply(b"220 2.0.0 Ready to start TLS\r\n"),
        StartTls(),
    ]
    assert client.session.busy
    assert client.session.tls_started(TLS) == []
    assert client.session.tls_active
    assert client.session.tls_info == TLS
    assert not client.session.busy


def test_starttls_when_not_available_is_454() -> None:
    client = Client(ehlo=True)
    assert client.codes(b"STARTTLS\r\n") == ["454 4.7.0"]
    assert StartTls() not in client.outputs


def test_starttls_when_already_active_is_503() -> None:
    client = Client(make_policy(starttls_available=True), tls=True, ehlo=True)
    assert client.codes(b"STARTTLS\r\n") == ["503 5.5.1"]


def test_starttls_with_a_parameter_is_501() -> None:
    client = tls_client()
    assert client.codes(b"STARTTLS now\r\n") == ["501 5.5.4"]
    assert not client.session.busy


def test_session_state_is_forgotten_after_the_handshake() -> None:
    client = tls_client(auth_without_tls=True)
    client.feed(b"AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n")
    client.session.auth_result("bob")
    client.start_transaction()
    client.feed(b"STARTTLS\r\n")
    client.session.tls_started(TLS)
    assert client.session.helo == ""
    assert client.session.auth_user is None
    assert client.session.envelope is None
    assert client.codes(b"MAIL FROM:<a@example.com>\r\n") == ["503 5.5.1"]
    replies = client.replies(b"EHLO again.test\r\n")
    assert "STARTTLS" not in replies[0]
    assert "AUTH PLAIN LOGIN" in replies[0]


def test_commands_pipelined_after_starttls_are_discarded() -> None:
    client = tls_client()
    outputs = client.feed(
        b"STARTTLS\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<x@example.org>\r\n"
    )
    assert outputs == [Reply(b"220 2.0.0 Ready to start TLS\r\n"), StartTls()]
    # more plaintext arriving before the handshake completes is discarded too
    assert client.feed(b"DATA\r\n") == []
    assert client.session.pending_bytes == 0
    assert client.session.tls_started(TLS) == []
    client.codes(b"EHLO c.test\r\n")
    assert client.session.envelope is None
    assert client.codes(b"RCPT TO:<x@example.org>\r\n") == ["503 5.5.1"]


def test_partial_command_before_starttls_is_discarded() -> None:
    client = tls_client()
    client.feed(b"STARTTLS\r\nNO")
    client.session.tls_started(TLS)
    assert client.codes(b"OP\r\n") == ["500 5.5.2"]


def test_tls_started_without_starttls_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        tls_client().session.tls_started(TLS)


def test_mail_after_tls_when_tls_is_required() -> None:
    client = tls_client(tls_required=True)
    assert client.codes(b"MAIL FROM:<a@example.com>\r\n") == ["530 5.7.0"]
    client.feed(b"STARTTLS\r\n")
    client.session.tls_started(TLS)
    client.codes(b"EHLO c.test\r\n")
    assert client.codes(b"MAIL FROM:<a@example.com>\r\n") == ["250 2.1.0"]
