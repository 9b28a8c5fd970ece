from __future__ import annotations

from .support import Client


def test_helo_replies_250_without_extensions() -> None:
    client = Client()
    assert client.replies(b"HELO client.test\r\n") == ["250 mx.test Hello client.test"]
    assert client.session.helo == "client.test"
    assert client.session.esmtp is False


def test_helo_without_argument_is_501() -> None:
    client = Client()
    assert client.codes(b"HELO\r\n") == ["501 5.5.4"]
    assert client.codes(b"HELO a b\r\n") == ["501 5.5.4"]


def test_mail_before_helo_is_503() -> None:
    client = Client()
    assert client.codes(b"MAIL FROM:<a@example.com>\r\n") == ["503 5.5.1"]


def test_plain_mail_works_after_helo() -> None:
    client = Client()
    client.codes(b"HELO client.test\r\n")
    assert client.codes(b"MAIL FROM:<a@example.com>\r\n") == ["250 2.1.0"]
    assert client.codes(b"RCPT TO:<b@example.org>\r\n") == ["250 2.1.5"]


def test_esmtp_parameters_are_refused_after_helo() -> None:
    client = Client()
    client.codes(b"HELO client.test\r\n")
    assert client.codes(b"MAIL FROM:<a@example.com> SIZE=10\r\n") == ["555 5.5.4"]
    assert client.codes(b"MAIL FROM:<a@example.com>\r\n") == ["250 2.1.0"]
    assert client.codes(b"RCPT TO:<b@example.org> NOTIFY=NEVER\r\n") == ["555 5.5.4"]


def test_helo_resets_the_transaction() -> None:
    client = Client(ehlo=True)
    client.start_transaction()
    assert client.codes(b"HELO client.test\r\n") == ["250"]
    assert client.session.envelope is None
    assert client.session.esmtp is False


def test_auth_after_helo_is_503() -> None:
    from .support import make_policy

    client = Client(make_policy(auth_without_tls=True))
    client.codes(b"HELO client.test\r\n")
    assert client.codes(b"AUTH PLAIN\r\n") == ["503 5.5.1"]
