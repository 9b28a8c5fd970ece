"""Content-Disposition values for downloads (RFC 6266, RFC 8187)."""

from __future__ import annotations

import pytest

from postroom.api.disposition import content_disposition


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
