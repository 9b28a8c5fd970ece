"""No reply line is longer than 512 octets with its CRLF (RFC 5321 §4.5.3.1.5), even when it
quotes a client's over-long argument. Found by the fuzzer (test_session_fuzz.py)."""

from __future__ import annotations

import pytest

from postroom.smtp.replies import multiline, reply

from .support import Client


def lines_of(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    return [line + b"\r\n" for line in data.split(b"\r\n")[:-1]]


@pytest.mark.parametrize(
    ("setup", "line"),
    [
        (b"", b"HELP " + b"y" * 500 + b"\r\n"),
        (b"", b"EHLO " + b"h" * 500 + b"\r\n"),
        (b"", b"HELO " + "é".encode() * 250 + b"\r\n"),
        (b"EHLO c\r\n", b"MAIL FROM:<a@b.c> " + b"X" * 600 + b"=1\r\n"),
        (b"EHLO c\r\n", b"MAIL FROM:<a@b.c> " + b"ENVID" * 130 + b"=\r\n"),
        (b"EHLO c\r\nMAIL FROM:<a@b.c>\r\n", b"RCPT TO:<d@e.f> " + b"NOTIFY" * 150 + b"=x\r\n"),
    ],
)
def test_replies_quoting_long_arguments_stay_within_512_octets(setup: bytes, line: bytes) -> None:
    client = Client()
    client.feed(setup)
    outputs = client.feed(line)
    data = b"".join(o.data for o in outputs if hasattr(o, "data"))
    assert data
    for reply_line in lines_of(data):
        assert len(reply_line) <= 512, reply_line[:60]
    assert client.replies(outputs=outputs)  # still parseable replies


def test_cut_text_ends_in_an_ellipsis_at_a_character_boundary() -> None:
    data = reply(501, "5.5.4", "x" + "é" * 600)
    assert len(data) <= 512 and data.endswith(b"...\r\n")
    data.decode("utf-8")  # not cut inside a character
    long = multiline(250, "", ["mx Hello " + "h" * 600, "PIPELINING"])
    assert [len(x) for x in lines_of(long)] == [512, 16]
    assert lines_of(long)[1] == b"250 PIPELINING\r\n"
    assert reply(250, "2.0.0", "Ok") == b"250 2.0.0 Ok\r\n"
