from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from postroom.core.types import Address
from postroom.mime.decoding import (
    decode_bytes,
    decode_words,
    header_text,
    parse_addresses,
    parse_date,
    repair,
    strip_angle,
    unfold,
)


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("café".encode("iso-8859-1"), "ISO-8859-1", "café"),
        ("Привет".encode("koi8-r"), "koi8-r", "Привет"),
        ("会議".encode("shift_jis"), "Shift_JIS", "会議"),
        ("café".encode(), "us-ascii", "café"),  # mislabelled UTF-8
        ("café".encode(), None, "café"),
        ("café".encode("iso-8859-1"), None, "café"),  # not UTF-8: Latin-1 last resort
        ("café".encode("iso-8859-1"), "no-such-charset", "café"),
        (b"abc", "zlib", "abc"),  # a bytes-to-bytes codec is no charset
        (b"caf\xe9", "utf-8", "caf\ufffd"),  # declared UTF-8, invalid: replacement character
        (b"\xff\xfe", '"unknown-8bit"', "ÿþ"),
    ],
)
def test_decode_bytes(data: bytes, charset: str | None, expected: str) -> None:
    assert decode_bytes(data, charset) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        ("=?utf-8?q?caf=C3=A9?=", "café"),
        ("=?UTF-8?B?Y2Fmw6k=?=", "café"),
        ("=?utf-8?b?Y2Fmw6k?=", "café"),  # missing padding
        ("=?iso-8859-1?q?J=FCrgen_M=FCller?=", "Jürgen Müller"),
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),  # whitespace between words dropped
        ("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
        ("=?utf-8?b?4oSW?=", "№"),
        ("=?utf-8?q?=E2=84?= =?utf-8?q?=96?=", "№"),  # a character split across two words
        ("=?utf-8*en?q?hello?=", "hello"),  # RFC 2231 language suffix
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        ("=?bogus?q?caf=E9?=", "café"),
        ("before =?utf-8?q?mid?= after", "before mid after"),
    ],
)
def test_decode_words(value: str, expected: str) -> None:
    assert decode_words(value) == expected


def test_repair_turns_surrogate_escaped_utf8_into_text() -> None:
    escaped = "Zoë".encode().decode("ascii", "surrogateescape")
    assert repair(escaped) == "Zoë"
    latin = "Zoë".encode("iso-8859-1").decode("ascii", "surrogateescape")
    assert repair(latin) == "Zoë"


def test_unfold_and_header_text() -> None:
    assert unfold("a\r\n b\r\n\tc") == "a b\tc"
    assert header_text(" =?utf-8?q?Your_order?=\r\n =?utf-8?q?_shipped?= ") == "Your order shipped"
    assert header_text(None) == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a@example.com", [("", "a@example.com")]),
        ("Bob <bob@example.net>", [("Bob", "bob@example.net")]),
        ('"Doe, Jane" <j@x.org>, acc@x.org', [("Doe, Jane", "j@x.org"), ("", "acc@x.org")]),
        ("=?utf-8?q?Ren=C3=A9e?= <r@x.org>", [("Renée", "r@x.org")]),
        ("x@y.org (The Comment)", [("The Comment", "x@y.org")]),
        ('"a\\"b" <c@d.org>', [('a"b', "c@d.org")]),
        ("undisclosed-recipients:;", []),
        ("Team: a@x.org, b@x.org;", [("", "a@x.org"), ("", "b@x.org")]),
        ('"Unclosed <nobody@example.com', [("Unclosed", "nobody@example.com")]),
        ("", []),
        ("Bob\r\n <bob@example.net>", [("Bob", "bob@example.net")]),
        # Brackets that do not pair up: shown as written, not as the fragment "not".
        ("<<not an address", [("", "<<not an address")]),
        ("Joe <joe>", [("Joe", "joe")]),  # no domain, but read as written
        ("root", [("", "root")]),
    ],
)
def test_parse_addresses(value: str, expected: list[tuple[str, str]]) -> None:
    assert parse_addresses(value) == tuple(Address(name, address) for name, address in expected)


def test_parse_addresses_keeps_what_garbage_allows() -> None:
    found = parse_addresses("<<<>>>, , ;;; @@@, good@example.net")
    assert Address("", "good@example.net") in found


def test_parse_date() -> None:
    assert parse_date("Tue, 14 Jan 2025 11:00:00 +0100") == datetime(
        2025, 1, 14, 11, tzinfo=timezone(timedelta(hours=1))
    )
    assert parse_date("Tue, 14 Jan 2025 10:00:00 -0000") == datetime(2025, 1, 14, 10, tzinfo=UTC)
    assert parse_date("14 Jan 2025 10:00 GMT") == datetime(2025, 1, 14, 10, tzinfo=UTC)
    assert parse_date("Yesterday at teatime") is None
    assert parse_date("Tue, 99 Foo 99999999999 99:99:99") is None
    assert parse_date(None) is None


def test_strip_angle() -> None:
    assert strip_angle(" <id@host> ") == "id@host"
    assert strip_angle("id@host") == "id@host"
    assert strip_angle("<a@b> <c@d>") == "a@b"
    assert strip_angle("<unclosed@b") == "unclosed@b"
    assert strip_angle("<>") == ""


def test_long_and_short_header_values_read_the_same_whether_remembered_or_not() -> None:
    """Short address and date values are cached, long ones are not: same results either way."""
    many = ", ".join(f"User {i} <u{i}@example.com>" for i in range(60))
    assert len(many) > 512
    parsed = parse_addresses(many)
    assert len(parsed) == 60 and parsed[59] == Address("User 59", "u59@example.com")
    assert parse_addresses(many) == parsed
    short = "Ann <ann@example.com>"
    assert parse_addresses(short) == parse_addresses(short) == (Address("Ann", "ann@example.com"),)
    padded = "Tue, 14 Jan 2025 11:00:00 +0100" + " " * 200
    assert parse_date(padded) == parse_date(padded.strip()) is not None
