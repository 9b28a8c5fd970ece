from __future__ import annotations

from postroom.smtp.protocol import Close, Reply

from .support import Client


def test_quit_says_goodbye_and_closes() -> None:
    client = Client(ehlo=True)
    assert client.feed(b"QUIT\r\n") == [Reply(b"221 2.0.0 mx.test Goodbye\r\n"), Close()]
    assert client.session.closed
    assert client.session.close_reason == "quit"


def test_nothing_after_quit_is_processed() -> None:
    client = Client()
    outputs = client.feed(b"QUIT\r\nNOOP\r\nEHLO x\r\n")
    assert client.codes(outputs=outputs) == ["221 2.0.0"]
    assert client.feed(b"NOOP\r\n") == []
    assert client.session.helo == ""


def test_quit_with_argument_is_501() -> None:
    client = Client()
    assert client.codes(b"QUIT now\r\n") == ["501 5.5.4"]
    assert not client.session.closed


def test_quit_in_a_transaction() -> None:
    client = Client(ehlo=True)
    client.start_transaction()
    assert client.codes(b"quit\r\n") == ["221 2.0.0"]
    assert Close() in client.outputs
