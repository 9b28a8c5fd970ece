"""The header section of submitted messages: splitting, From/Sender parsing, fix-ups."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postroom.core.errors import RefusalKind
from postroom.pipeline.headers import (
    BAD_FROM,
    BAD_SENDER,
    LONG_BODY,
    LONG_HEADER,
    MAX_LINE,
    NO_FROM,
    SEVERAL_FROM,
    HeaderError,
    fix_up,
    parse_mailboxes,
    read_authors,
    split_message,
)

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def test_split_keeps_fields_verbatim_with_continuations() -> None:
    data = crlf("From: a@example.com\nSubject: one\n two\nX-Empty:\n\nbody\n")
    parsed = split_message(data)
    assert [f.name for f in parsed.fields] == ["from", "subject", "x-empty"]
    assert parsed.fields[1].raw == b"Subject: one\r\n two\r\n"
    assert parsed.fields[1].value == b" one two"
    assert parsed.rest == b"\r\nbody\r\n"
    assert parsed.to_bytes() == data


def test_split_stops_at_a_line_that_is_not_a_field() -> None:
    parsed = split_message(crlf("From: a@example.com\nthis is body\nBcc: x@example.com\n"))
    assert [f.name for f in parsed.fields] == ["from"]
    assert parsed.rest == b"this is body\r\nBcc: x@example.com\r\n"


def test_split_accepts_space_before_colon() -> None:
    parsed = split_message(crlf("From : a@example.com\n\n"))
    assert parsed.fields[0].name == "from"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a@example.com", ["a@example.com"]),
        ("Alice <alice@example.com>", ["alice@example.com"]),
        (
            '"Doe, Jane" <jane@example.com>, bob@example.org',
            ["jane@example.com", "bob@example.org"],
        ),
        ("alice@example.com (Alice (the first))", ["alice@example.com"]),
        ("=?utf-8?q?J=C3=B6rg?= <jorg@example.com>", ["jorg@example.com"]),
        ("Jörg <jörg@bücher.example>", ["jörg@bücher.example"]),
        ('"odd local"@example.com', ['"odd local"@example.com']),
        ("a@[192.0.2.1]", ["a@[192.0.2.1]"]),
        ("Mr. Smith <smith@example.com>", ["smith@example.com"]),
        ("<@relay.example:alice@example.com>", ["alice@example.com"]),
        ("a@example.com,, b@example.com", ["a@example.com", "b@example.com"]),
        ("first.last @ example.com", ["first.last@example.com"]),
    ],
)
def test_parse_mailboxes(value: str, expected: list[str]) -> None:
    assert parse_mailboxes(value.encode("utf-8")) == expected


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"   ",
        b"not an address",
        b"alice",
        b"alice@",
        b"@example.com",
        b"Alice <alice@example.com",
        b"Alice alice@example.com>",
        b"Alice <alice@example.com> trailing",
        b"undisclosed-recipients:;",
        b"Team: a@example.com, b@example.com;",
        b'"unterminated <a@example.com>',
        b"a@example.com (unterminated comment",
        b"a@exa mple.com",
        b"a..b@example.com",
        b"a@example.com.",
        b"\xff\xfe@example.com",
        b"<a@example.com> <b@example.com>",
        b"a@b@example.com",
    ],
)
def test_parse_mailboxes_refuses(value: bytes) -> None:
    with pytest.raises(ValueError):
        parse_mailboxes(value)


def test_read_authors() -> None:
    parsed = split_message(
        crlf("From: A <a@example.com>, b@example.com\nSender: s@example.com\n\nx\n")
    )
    authors = read_authors(parsed)
    assert authors.from_ == ("a@example.com", "b@example.com")
    assert authors.sender == "s@example.com"


@pytest.mark.parametrize(
    ("head", "text"),
    [
        ("Subject: no from\n", NO_FROM),
        ("From: a@example.com\nFrom: b@example.com\n", SEVERAL_FROM),
        ("From: nobody at all\n", BAD_FROM),
        ("From:\n", BAD_FROM),
        ("From: a@example.com\nSender: a@example.com, b@example.com\n", BAD_SENDER),
        ("From: a@example.com\nSender: ???\n", BAD_SENDER),
    ],
)
def test_read_authors_refuses_as_content_invalid(head: str, text: str) -> None:
    with pytest.raises(HeaderError) as caught:
        read_authors(split_message(crlf(head + "\nbody\n")))
    assert (caught.value.kind, caught.value.detail) == (RefusalKind.CONTENT_INVALID, text)
    assert caught.value.field == ("Sender" if text == BAD_SENDER else "From")


def test_fix_up_adds_message_id_and_date_removes_bcc() -> None:
    data = crlf(
        "From: a@example.com\nBcc: secret@example.org,\n other@example.org\nTo: b@example.net\n"
        "\nHello\nBcc: this line is body\n"
    )
    out = fix_up(split_message(data), message_id="01ABC", id_domain="example.com", now=NOW)
    assert out == crlf(
        "From: a@example.com\nTo: b@example.net\n"
        "Message-ID: <01abc@example.com>\nDate: Wed, 04 Mar 2026 05:06:07 +0000\n"
        "\nHello\nBcc: this line is body\n"
    )


def test_fix_up_keeps_existing_message_id_and_date() -> None:
    data = crlf(
        "Date: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-Id: <x@y>\nFrom: a@example.com\n\nHi\n"
    )
    out = fix_up(split_message(data), message_id="01ABC", id_domain="example.com", now=NOW)
    assert out == data


def test_fix_up_of_a_header_only_message_adds_the_empty_line() -> None:
    data = crlf("From: a@example.com\nDate: x\nMessage-ID: <a@b>\n")
    out = fix_up(split_message(data), message_id="01ABC", id_domain="example.com", now=NOW)
    assert out == data + b"\r\n"


def test_long_header_line_is_folded_at_existing_spaces() -> None:
    words = " ".join(f"word{i:04d}" for i in range(300))  # ~2700 characters
    data = crlf(f"From: a@example.com\nSubject: {words}\nDate: x\nMessage-ID: <a@b>\n\nHi\n")
    out = fix_up(split_message(data), message_id="01ABC", id_domain="example.com", now=NOW)
    lines = out.split(b"\r\n")
    assert max(map(len, lines)) <= MAX_LINE
    subject = split_message(out).get_all("subject")[0]
    assert subject.value == b" " + words.encode()  # unfolding gives the original value
    assert out.replace(b"\r\n ", b" ") == data


def test_long_header_line_without_spaces_is_refused() -> None:
    data = crlf(f"From: a@example.com\nX-Blob: {'x' * 1200}\n\nHi\n")
    with pytest.raises(HeaderError) as caught:
        fix_up(split_message(data), message_id="01ABC", id_domain="example.com", now=NOW)
    assert (caught.value.kind, caught.value.detail, caught.value.field) == (
        RefusalKind.CONTENT_INVALID,
        LONG_HEADER,
        "headers",
    )


def test_a_line_of_exactly_998_octets_is_kept() -> None:
    data = crlf(
        f"From: a@example.com\nDate: x\nMessage-ID: <a@b>\nX-Blob: {'x' * (998 - 8)}\n\nHi\n"
    )
    out = fix_up(split_message(data), message_id="01ABC", id_domain="example.com", now=NOW)
    assert out == data


def test_long_body_line_is_refused_unless_binary() -> None:
    data = crlf(f"From: a@example.com\nDate: x\nMessage-ID: <a@b>\n\n{'y' * 999}\n")
    with pytest.raises(HeaderError) as caught:
        fix_up(split_message(data), message_id="01ABC", id_domain="example.com", now=NOW)
    assert (caught.value.kind, caught.value.detail, caught.value.field) == (
        RefusalKind.CONTENT_INVALID,
        LONG_BODY,
        "body",
    )
    out = fix_up(
        split_message(data), message_id="01ABC", id_domain="example.com", now=NOW, binary=True
    )
    assert out == data
