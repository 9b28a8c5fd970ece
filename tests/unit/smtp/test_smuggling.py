"""SMTP smuggling: only <CRLF>.<CRLF> ends the data; nothing a client hides in a message or
before a TLS handshake ever runs as a command."""

from __future__ import annotations

import pytest

from postroom.core.types import TlsInfo
from postroom.smtp.protocol import Close, DeliverMessage, Reply, StartTls

from .support import Client, make_policy

SMUGGLED = b"MAIL FROM:<admin@victim.example>\r\nRCPT TO:<target@victim.example>\r\nDATA\r\n"
FAKE_ENDS = [
    b"\n.\n",
    b"\r.\r",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r\n.\r",
    b"\r.\r\n",
    b"\n.\r",
    b"\r\n.\r\r\n",
]


@pytest.mark.parametrize("fake", FAKE_ENDS)
def test_fake_terminators_never_end_the_data(fake: bytes) -> None:
    client = Client(make_policy(bare_line_endings="accept"), ehlo=True)
    client.start_data()
    wire = b"Subject: first\r\n\r\nbody" + fake + SMUGGLED + b"Subject: smuggled\r\n\r\nx\r\n"
    assert client.feed(wire) == []
    outputs = client.feed(b".\r\n")
    assert [type(o) for o in outputs] == [DeliverMessage]
    assert client.session.envelope is not None  # still the one transaction
    assert client.session.envelope.mail_from == "a@example.com"


@pytest.mark.parametrize("fake", FAKE_ENDS)
def test_fake_terminators_are_bare_line_endings_and_refused(fake: bytes) -> None:
    client = Client(ehlo=True)
    client.start_data()
    client.feed(b"Subject: first\r\n\r\nbody" + fake + SMUGGLED + b"x\r\n")
    outputs = client.feed(b".\r\n")
    assert client.replies(outputs=outputs) == [
        "550 5.6.11 Bare CR or LF line endings are not allowed"
    ]
    assert client.session.envelope is None
    # nothing smuggled ran: a RCPT now has no transaction
    assert client.codes(b"RCPT TO:<x@example.org>\r\n") == ["503 5.5.1"]


def test_accepted_bare_line_endings_are_normalised_and_flagged() -> None:
    client = Client(make_policy(bare_line_endings="accept"), ehlo=True)
    delivery = client.send_message(b"A: 1\nB: 2\r\rbody\r\nend\n\r\n.\r\n")
    assert delivery is not None
    assert delivery.data == b"A: 1\r\nB: 2\r\n\r\nbody\r\nend\r\n\r\n"
    assert delivery.bare_line_endings is True


def test_clean_messages_are_not_flagged() -> None:
    delivery = Client(make_policy(bare_line_endings="accept"), ehlo=True).send_message(
        b"A: 1\r\n\r\nbody\r\n.\r\n"
    )
    assert delivery is not None
    assert delivery.bare_line_endings is False


def test_smuggled_text_stays_inside_the_message_when_accepted() -> None:
    client = Client(make_policy(bare_line_endings="accept"), ehlo=True)
    delivery = client.send_message(b"body\n.\n" + SMUGGLED + b".\r\n")
    assert delivery is not None
    assert b"MAIL FROM:<admin@victim.example>" in delivery.data
    assert client.codes(outputs=client.session.message_result("id")) == ["250 2.0.0"]
    assert client.session.messages == 1


def test_nul_before_a_dot_line_is_not_a_terminator() -> None:
    client = Client(ehlo=True)
    client.start_data()
    assert client.feed(b"body\r\n\x00.\r\n" + SMUGGLED) == []
    assert client.replies(b".\r\n") == ["554 5.6.0 The message contains NUL characters"]


def test_nul_in_data_drops_the_message() -> None:
    client = Client(ehlo=True)
    client.send_message(b"Subject: x\r\n\r\nnul\x00here\r\n.\r\n")
    assert client.replies(outputs=client.outputs) == [
        "554 5.6.0 The message contains NUL characters"
    ]
    assert client.session.envelope is None
    assert not any(isinstance(o, DeliverMessage) for o in client.outputs)


@pytest.mark.parametrize(
    "line",
    [b"NO\x00OP\r\n", b"NOOP\x00\r\n", b"NOOP\rRSET\r\n", b"\xff\xfe\r\n"],
)
def test_nul_bare_cr_or_bad_utf8_in_a_command_is_500(line: bytes) -> None:
    client = Client(ehlo=True)
    client.start_transaction()
    assert client.codes(line) == ["500 5.5.2"]
    assert client.session.envelope is not None


def test_commands_may_end_with_bare_lf() -> None:
    client = Client()
    outputs = client.feed(
        b"EHLO c.test\nMAIL FROM:<a@example.com>\nRCPT TO:<b@example.org>\nDATA\n"
    )
    assert client.codes(outputs=outputs) == ["250", "250 2.1.0", "250 2.1.5", "354"]


def test_data_ends_only_at_crlf_dot_crlf_even_after_bare_lf_commands() -> None:
    client = Client(make_policy(bare_line_endings="accept"), ehlo=True)
    client.codes(b"MAIL FROM:<a@example.com>\nRCPT TO:<b@example.org>\nDATA\n")
    assert client.feed(b"line\n.\n") == []
    client.feed(b"\r\n.\r\n")
    assert client.delivery().data == b"line\r\n.\r\n\r\n"


def test_pipelined_input_after_starttls_never_runs() -> None:
    client = Client(make_policy(starttls_available=True), ehlo=True)
    outputs = client.feed(b"STARTTLS\r\n" + SMUGGLED + b"evil\r\n.\r\n")
    assert outputs == [Reply(b"220 2.0.0 Ready to start TLS\r\n"), StartTls()]
    assert client.feed(b"RCPT TO:<more@victim.example>\r\n") == []
    client.session.tls_started(TlsInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384"))
    assert client.codes(b"EHLO c.test\r\n") == ["250"]
    assert client.codes(b"DATA\r\n") == ["503 5.5.1"]


@pytest.mark.parametrize("verb", [b"GET / HTTP/1.1", b"POST /x HTTP/1.0", b"CONNECT a:25 HTTP/1.1"])
def test_http_requests_are_cut_off(verb: bytes) -> None:
    client = Client()
    outputs = client.feed(verb + b"\r\nHost: example\r\n\r\n")
    assert client.codes(outputs=outputs) == ["421 4.7.0"]
    assert outputs[-1] == Close()
    assert client.session.close_reason == "http_command"


def test_data_terminator_at_the_very_start() -> None:
    client = Client(ehlo=True)
    delivery = client.send_message(b".\r\n")
    assert delivery is not None
    assert delivery.data == b""


def test_dot_crlf_inside_a_line_is_not_a_terminator() -> None:
    client = Client(ehlo=True)
    delivery = client.send_message(b"a.\r\nb\r\n.\r\n")
    assert delivery is not None
    assert delivery.data == b"a.\r\nb\r\n"
