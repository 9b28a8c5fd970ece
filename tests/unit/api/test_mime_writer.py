"""The MIME writer of HTTP sends: what it writes parses back (stdlib email, default policy) to
the same addresses, subject, text, HTML and parts, with CRLF line endings and no line over 998
octets, whatever the text (hypothesis), and the pipeline's header reader accepts it."""

from __future__ import annotations

import email
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import default

from hypothesis import given, settings
from hypothesis import strategies as st

from postroom.api.mime_writer import Headers, Part, write
from postroom.pipeline.headers import read_authors, split_message

ANN = Address('Ann Ö. "Quote"', "ann", "example.net")


def head(subject: str = "Hi", **extra: object) -> Headers:
    values: dict[str, object] = {
        "sender": Address("App", "app", "example.com"),
        "to": [ANN, Address("", "bo", "example.org")],
        "cc": [],
        "reply_to": [],
        "subject": subject,
        "date": "Thu, 03 Dec 2026 10:00:00 +0000",
        "message_id": "<x@example.com>",
        "extra": [("X-Tags", "a, b")],
    }
    values.update(extra)
    return Headers(**values)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def unix(text: str) -> str:
    """The stdlib parser keeps a single part's CRLF line endings."""
    return text.replace("\r\n", "\n").rstrip("\n")


def check_lines(data: bytes) -> None:
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_structure_with_inline_and_attached_parts() -> None:
    parts = [
        Part(b"\x89PNG", "image", "png", "logo.png", "logo@app"),
        Part("données".encode(), "text", "csv", "résumé.csv", ""),
    ]
    data = write(head(), "plain", "<img src=cid:logo@app>", parts)
    check_lines(data)
    msg = parse(data)
    assert msg.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "text/csv",
    ]
    assert msg["To"].addresses[0].display_name == 'Ann Ö. "Quote"'
    assert msg["X-Tags"] == "a, b"
    attached = [p for p in msg.walk() if p.get_filename() == "résumé.csv"]
    assert attached and attached[0].get_payload(decode=True) == "données".encode()
    inline = [p for p in msg.walk() if p["Content-ID"] == "<logo@app>"]
    assert inline[0].get_content() == b"\x89PNG"
    assert list(read_authors(split_message(data)).from_) == ["app@example.com"]


@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=300),
    text=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=3000
    ),
    html=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"), max_size=300
    ),
)
def test_any_text_round_trips(subject: str, text: str, html: str) -> None:
    data = write(head(" ".join(subject.split())), text or "x", html, [])
    check_lines(data)
    msg = parse(data)
    assert msg["Subject"] == " ".join(subject.split())
    plain = msg.get_body(("plain",))
    assert plain is not None
    expected = (text or "x").replace("\r\n", "\n")
    assert unix(plain.get_content()) == expected.rstrip("\n")
    if html:
        html_part = msg.get_body(("html",))
        assert html_part is not None and unix(html_part.get_content()) == html.rstrip("\n")


def test_long_ascii_subject_is_folded_and_long_lines_are_quoted_printable() -> None:
    subject = "word " * 60
    data = write(head(subject.strip()), "y" * 5000 + "\n", "", [])
    check_lines(data)
    msg = parse(data)
    assert msg["Subject"] == subject.strip()
    assert msg["Content-Transfer-Encoding"] == "quoted-printable"
    assert unix(msg.get_content()) == "y" * 5000
