"""Content-Disposition values for downloads (RFC 6266, RFC 8187)."""

from __future__ import annotations

import pytest

from postroom.api.disposition import content_disposition, inline_media_type


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.csv", 'attachment; filename="report.csv"'),
        (
            "日本語.txt",
            "attachment; filename=\"___.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.txt",
        ),
        ("café.csv", "attachment; filename=\"cafe.csv\"; filename*=UTF-8''caf%C3%A9.csv"),
        ('a"b\\c.txt', "attachment; filename=\"a_b_c.txt\"; filename*=UTF-8''a%22b%5Cc.txt"),
        ("a b;c=d.txt", 'attachment; filename="a b;c=d.txt"'),
        ("line\r\nbreak.txt", 'attachment; filename="linebreak.txt"'),
        ("", 'attachment; filename="part"'),
        ("\x00\x01", 'attachment; filename="part"'),
    ],
)
def test_names_become_ascii_headers_that_keep_the_exact_name(name: str, expected: str) -> None:
    value = content_disposition("attachment", name)
    assert value == expected
    assert value.isascii() and "\r" not in value and "\n" not in value


@pytest.mark.parametrize(
    ("declared", "shown"),
    [
        ("image/png", "image/png"),
        ("IMAGE/PNG; name=x.png", "image/png"),
        ("image/jpeg", "image/jpeg"),
        ("image/gif", "image/gif"),
        ("image/webp", "image/webp"),
        ("application/pdf", "application/pdf"),
        ("text/plain", "text/plain; charset=utf-8"),
        ('text/plain; format=flowed; charset="ISO-8859-1"', "text/plain; charset=ISO-8859-1"),
        # a charset that is not a token is dropped, never copied into the header
        ("text/plain; charset=utf-8\r\nSet-Cookie: x", "text/plain; charset=utf-8"),
        ("text/html", None),
        ("image/svg+xml", None),
        ("application/xhtml+xml", None),
        ("text/xml", None),
        ("application/octet-stream", None),
        ("image/png-but-not", None),
        ("", None),
    ],
)
def test_only_safe_types_are_shown_inline(declared: str, shown: str | None) -> None:
    assert inline_media_type(declared) == shown
