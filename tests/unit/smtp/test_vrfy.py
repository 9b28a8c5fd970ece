from __future__ import annotations

from .support import Client


def test_vrfy_neither_confirms_nor_denies() -> None:
    client = Client(ehlo=True)
    replies = client.replies(b"VRFY postmaster\r\n")
    assert client.codes(outputs=client.outputs) == ["252 2.5.0"]
    assert "Cannot verify" in replies[0]
    assert client.codes(b"VRFY <someone@example.org>\r\n") == ["252 2.5.0"]


def test_vrfy_needs_an_argument() -> None:
    assert Client().codes(b"VRFY\r\n") == ["501 5.5.4"]


def test_expn_is_not_supported() -> None:
    client = Client(ehlo=True)
    assert client.codes(b"EXPN staff\r\n") == ["502 5.5.1"]
    assert client.session.errors == 1
