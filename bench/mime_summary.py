"""Ingest-path cost of `postroom.mime.summary.summarize`, in µs per message.

Prints figures for a ~2 KB single-part plain message and a multipart/alternative message with a
PDF attachment, and, for comparison, the same extraction done with the modern `email` policy
(`email.policy.default`), which is why summarize parses with compat32.

    .venv/bin/python bench/mime_summary.py
"""

from __future__ import annotations

import base64
import textwrap
import timeit
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from postroom.mime.summary import summarize
from postroom.mime.view import parse_message

HEADERS = (
    "Received: from mail.example.com (mail.example.com [192.0.2.1])\r\n"
    "\tby mx.example.net with ESMTPS id 4Xk2Lq0Z9n\r\n"
    "\tfor <bob@example.net>; Tue, 14 Jan 2025 10:00:00 +0000\r\n"
    'From: "Alice Example" <alice@example.com>\r\n'
    "To: Bob <bob@example.net>, carol@example.net\r\n"
    "Subject: =?utf-8?q?Quarterly_r=C3=A9sum=C3=A9?= report\r\n"
    "Date: Tue, 14 Jan 2025 10:00:00 +0000\r\n"
    "Message-ID: <20250114100000.12345@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
)
LINE = "Hello Bob, this is line {:02d} of the quarterly report body text.\r\n"
BODY = "".join(LINE.format(i) for i in range(27))

PLAIN = (
    HEADERS + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
).encode() + BODY.encode()

PDF = base64.b64encode(bytes(range(256)) * 40).decode()
MULTIPART = (
    HEADERS
    + 'Content-Type: multipart/mixed; boundary="mixed"\r\n\r\n'
    + '--mixed\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n'
    + "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + BODY
    + "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>"
    + BODY.replace("\r\n", "<br>\r\n")
    + "</body></html>\r\n--alt--\r\n"
    + "--mixed\r\nContent-Type: application/pdf\r\n"
    + 'Content-Disposition: attachment; filename="report.pdf"\r\n'
    + "Content-Transfer-Encoding: base64\r\n\r\n"
    + "\r\n".join(textwrap.wrap(PDF, 76))
    + "\r\n--mixed--\r\n"
).encode()

_MODERN = BytesParser(policy=policy.default)


def modern_summary(raw: bytes) -> object:
    """The same fields read the straightforward way with the modern policy (reference only)."""
    message = _MODERN.parsebytes(raw)
    assert isinstance(message, EmailMessage)
    fields = [message[name] for name in ("From", "To", "Cc", "Subject", "Date", "Message-ID")]
    body = message.get_body(("plain", "html"))
    text = body.get_content() if body is not None else ""
    files = [(part.get_filename(), len(part.get_content())) for part in message.iter_attachments()]
    return fields, text, files


def measure(function: Callable[[bytes], object], raw: bytes) -> float:
    number = 2000
    best = min(timeit.repeat(lambda: function(raw), number=number, repeat=5))
    return best / number * 1e6


def main() -> None:
    for label, raw in (("plain", PLAIN), ("multipart/alternative + attachment", MULTIPART)):
        print(f"{label} ({len(raw)} bytes)")
        print(f"  summarize            {measure(summarize, raw):8.1f} µs/message")
        print(f"  parse_message (view) {measure(parse_message, raw):8.1f} µs/message")
        print(f"  modern policy (ref.) {measure(modern_summary, raw):8.1f} µs/message")


if __name__ == "__main__":
    main()
