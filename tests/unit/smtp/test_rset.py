from __future__ import annotations

from .support import Client


def test_rset_clears_the_transaction_and_keeps_helo() -> None:
    client = Client(ehlo=True)
    client.start_transaction()
    assert client.replies(b"RSET\r\n") == ["250 2.0.0 Ok: transaction reset"]
    assert client.session.envelope is None
    assert client.session.helo == "client.test"
    assert client.codes(b"RCPT TO:<b@example.org>\r\n") == ["503 5.5.1"]
    assert client.codes(b"MAIL FROM:<c@example.com>\r\n") == ["250 2.1.0"]


def test_rset_before_ehlo_is_fine() -> None:
    assert Client().codes(b"RSET\r\n") == ["250 2.0.0"]


def test_rset_with_argument_is_501() -> None:
    client = Client(ehlo=True)
    client.start_transaction()
    assert client.codes(b"RSET now\r\n") == ["501 5.5.4"]
    assert client.session.envelope is not None


def test_rset_after_data_abandons_nothing_already_delivered() -> None:
    client = Client(ehlo=True)
    client.send_message(b"x\r\n.\r\n")
    client.session.message_result("id")
    assert client.codes(b"rset\r\n") == ["250 2.0.0"]
    assert client.session.messages == 1
