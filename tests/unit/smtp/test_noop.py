from __future__ import annotations

from postroom.smtp.protocol import Reply

from .support import Client


def test_noop_replies_ok() -> None:
    client = Client()
    assert client.feed(b"NOOP\r\n") == [Reply(b"250 2.0.0 Ok\r\n")]


def test_noop_accepts_an_argument() -> None:
    assert Client().codes(b"NOOP keep me alive\r\n") == ["250 2.0.0"]


def test_noop_leaves_the_transaction_alone() -> None:
    client = Client(ehlo=True)
    client.start_transaction()
    assert client.codes(b"noop\r\n") == ["250 2.0.0"]
    envelope = client.session.envelope
    assert envelope is not None
    assert envelope.recipients == ("b@example.org",)


def test_many_pipelined_noops_answer_in_one_write() -> None:
    client = Client()
    outputs = client.feed(b"NOOP\r\n" * 50)
    assert len(outputs) == 1
    assert client.codes(outputs=outputs) == ["250 2.0.0"] * 50
