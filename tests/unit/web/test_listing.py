"""Formatting of the server-rendered first page (kept in step with static/format.js)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from postroom.web.listing import address_list, data_block, format_size, relative_time

NOW = datetime(2025, 3, 14, 15, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ago", "text"),
    [
        (timedelta(seconds=10), "just now"),
        (timedelta(minutes=5), "5 min ago"),
        (timedelta(hours=3), "3 h ago"),
        (timedelta(hours=16), "yesterday"),
        (timedelta(days=3), "3 days ago"),
        (timedelta(days=20), "22 Feb"),
        (timedelta(days=400), "8 Feb 2024"),
    ],
)
def test_relative_time(ago: timedelta, text: str) -> None:
    assert relative_time(NOW - ago, NOW) == text


def test_sizes() -> None:
    assert [format_size(n) for n in (0, 1023, 1024, 2150, 10 * 1024, 5 * 1024 * 1024)] == [
        "0 B",
        "1023 B",
        "1.0 KB",
        "2.1 KB",
        "10 KB",
        "5.0 MB",
    ]


def test_address_list() -> None:
    people = [{"Name": n, "Address": f"{n.lower()}@x"} for n in ("Ann", "Bob", "Cy", "Di")]
    assert address_list(people[:2]) == "Ann, Bob"
    assert address_list(people) == "Ann, Bob, Cy +1"
    assert address_list([{"Name": "", "Address": "a@x"}]) == "a@x"


def test_data_block_cannot_close_its_script_element() -> None:
    value = {"Subject": "</script><!-- & \u2028"}
    block = str(data_block(value))
    assert "<" not in block and ">" not in block and "&" not in block
    assert json.loads(block) == value
