"""Messages for the end-to-end tests, sent over real SMTP."""

from __future__ import annotations

import smtplib
import socket
import struct
import zlib
from email.message import EmailMessage


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (220, 40, 40)) -> bytes:
    """A small solid-colour PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


PNG = png()


def send(port: int, msg: EmailMessage, rcpts: list[str] | None = None) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.send_message(msg, to_addrs=rcpts)


def simple(
    subject: str,
    body: str = "hello there",
    to: str = "Bob <bob@example.com>",
    sender: str = "Alice Example <alice@example.com>",
    tags: str | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    if tags:
        msg["X-Tags"] = tags
    msg.set_content(body)
    return msg


def rich(subject: str = "Your invoice #42") -> EmailMessage:
    """Text + HTML with an inline cid: image, a CSV attachment and a PNG attachment."""
    msg = simple(
        subject,
        body="Plain text body: invoice 42 is attached.\nSee https://example.com/i/42",
        tags="billing, monthly",
    )
    msg["Cc"] = "Carol <carol@example.com>"
    msg.add_alternative(
        "<html><body><h1 id='greeting'>Invoice 42</h1>"
        "<p>Rendered <b>HTML</b> body.</p>"
        "<img id='logo' alt='logo' width='40' height='40' src='cid:logo@postroom.test'>"
        "<p><a id='outside' href='https://example.com/pay'>Pay now</a></p>"
        "</body></html>",
        subtype="html",
    )
    parts = msg.get_payload()
    assert isinstance(parts, list)
    html = parts[1]
    assert isinstance(html, EmailMessage)
    html.add_related(PNG, maintype="image", subtype="png", cid="<logo@postroom.test>")
    msg.add_attachment(
        b"item,amount\ncoffee,3\n", maintype="text", subtype="csv", filename="invoice-42.csv"
    )
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="photo.png")
    return msg


def send_bare_lf(port: int, subject: str) -> None:
    """A message with bare LF line endings (the server tags it and attaches a warning)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = sock.makefile("rb")

        def reply() -> bytes:
            line = reader.readline()
            while line[3:4] == b"-":
                line = reader.readline()
            return line

        reply()
        for command in (
            b"EHLO test\r\n",
            b"MAIL FROM:<lf@example.com>\r\n",
            b"RCPT TO:<bob@example.com>\r\n",
            b"DATA\r\n",
        ):
            sock.sendall(command)
            reply()
        body = (
            f"From: lf@example.com\r\nTo: bob@example.com\r\nSubject: {subject}\r\n\r\n"
            "first line\nsecond line\n"
        ).encode()
        sock.sendall(body + b"\r\n.\r\n")
        answer = reply()
        assert answer.startswith(b"250"), answer
        sock.sendall(b"QUIT\r\n")
