"""spamd's REPORT answers parsed (score, verdict, rules with wrapped descriptions), refusals
and garbage as results with Error set, and the bounds of the client."""

from __future__ import annotations

import socket

from postroom.checks.spamd import MAX_MESSAGE, check, parse_answer, request
from postroom.config import HostPort

REPORT = (
    b"SPAMD/1.1 0 EX_OK\r\nContent-length: 600\r\nSpam: True ; 1003.3 / 5.0\r\n\r\n"
    b'Spam detection software, running on the system "vm",\n'
    b"Content analysis details:   (1003.3 points, 5.0 required)\n\n"
    b" pts rule name              description\n"
    b"---- ---------------------- --------------------------------------------------\n"
    b"1000 GTUBE                  BODY: Generic Test for Unsolicited Bulk Email\n"
    b"-0.0 NO_RECEIVED            Informational: message has no Received headers\n"
    b" 2.7 MISSING_DATE           Missing Date: header\n"
    b" 0.6 HTML_SHORT_LINK_IMG_1  HTML is very short with a linked image and a\n"
    b"                            description that wraps\n"
    b"\n"
    b"The original message was not completely plain text.\n"
)


def test_request_names_the_length() -> None:
    assert request(b"abc") == b"REPORT SPAMC/1.5\r\nContent-length: 3\r\n\r\nabc"


def test_report_is_parsed() -> None:
    result = parse_answer(REPORT)
    assert result.error == "" and result.is_spam is True and result.score == 1003.3
    assert result.rules == [
        {
            "Score": 1000.0,
            "Name": "GTUBE",
            "Description": "BODY: Generic Test for Unsolicited Bulk Email",
        },
        {
            "Score": -0.0,
            "Name": "NO_RECEIVED",
            "Description": "Informational: message has no Received headers",
        },
        {"Score": 2.7, "Name": "MISSING_DATE", "Description": "Missing Date: header"},
        {
            "Score": 0.6,
            "Name": "HTML_SHORT_LINK_IMG_1",
            "Description": "HTML is very short with a linked image and a description that wraps",
        },
    ]


def test_refusals_and_garbage_are_errors() -> None:
    assert parse_answer(b"SPAMD/1.0 76 Bad header line: x\r\n\r\n").error == (
        "spamd refused the check: 76 Bad header line: x"
    )
    assert parse_answer(b"HTTP/1.1 200 OK\r\n\r\n").error.startswith("spamd gave no answer")
    assert parse_answer(b"SPAMD/1.1 0 EX_OK\r\n\r\n").error == "spamd's answer has no Spam header"


async def test_unreachable_and_too_big() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await check(HostPort("127.0.0.1", port), b"Subject: x\r\n\r\nx\r\n")
    assert result.error.startswith(f"cannot reach spamd at 127.0.0.1:{port}:")
    big = await check(HostPort("127.0.0.1", port), b"x" * (MAX_MESSAGE + 1))
    assert big.error == (
        f"the message is {MAX_MESSAGE + 1} bytes, more than the {MAX_MESSAGE} SpamAssassin "
        "is given; not checked"
    )
    assert big.as_json() == {"Score": 0.0, "IsSpam": False, "Rules": [], "Error": big.error}
