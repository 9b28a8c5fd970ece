"""web/rows.py, the server's copy of the list rows: its formatting is format.js's, run in Node
on the same values (sizes on both sides of each unit and at exact halves, where toFixed and
Python's rounding part ways; times from seconds to years ago, in UTC), and its markup escapes
what a message says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postroom.web.rows import format_count, format_size, parse_date, relative_time, row_item
from tests.unit.web.run_js import needs_node, run_module

NOW = datetime(2026, 3, 4, 9, 30, 15, 250000, tzinfo=UTC)
SIZES = [
    0,
    1,
    1023,
    1024,
    1280,
    1536,
    10239,
    10240,
    10752,
    11776,
    500_000,
    1048575,
    1048576,
    1572864,
    1101004,
    7_654_321_000,
]
AGO = [
    timedelta(seconds=s)
    for s in (-30, 0, 44, 45, 89, 90, 150, 3569, 3570, 3600, 5399, 5400, 9 * 3600 + 15)
] + [
    timedelta(hours=9, minutes=30, seconds=16),  # just before midnight
    timedelta(hours=20),
    timedelta(hours=33, minutes=31),
    timedelta(days=2),
    timedelta(days=6, hours=20),
    timedelta(days=7),
    timedelta(days=40),
    timedelta(days=63),
    timedelta(days=400),
]


@needs_node
def test_sizes_counts_and_times_read_as_format_js_writes_them() -> None:
    dates = [NOW - ago for ago in AGO]
    calls = [("formatSize", [n]) for n in SIZES]
    calls += [("formatCount", [n]) for n in (0, 7, 999, 1000, 1234567)]
    calls += [("relativeTime", [{"date": d.isoformat()}, {"date": NOW.isoformat()}]) for d in dates]
    expected = [format_size(n) for n in SIZES]
    expected += [format_count(n) for n in (0, 7, 999, 1000, 1234567)]
    expected += [relative_time(d, NOW) for d in dates]
    assert run_module("format.js", calls) == expected
    assert format_size(1280) == "1.3 KB" and format_size(10752) == "11 KB"  # halves go up


def test_a_time_without_offset_is_utc() -> None:
    assert parse_date("2026-03-04T09:00:00") == datetime(2026, 3, 4, 9, tzinfo=UTC)
    assert parse_date("2026-03-04T09:00:00.5Z") == datetime(2026, 3, 4, 9, 0, 0, 500000, UTC)
    assert parse_date("not a date") is None
    assert relative_time(None, NOW) == ""


def test_a_row_escapes_what_the_message_says() -> None:
    hostile = '"><img src=x onerror=alert(1)>'
    row = row_item(
        {
            "ID": "a/b c",
            "Read": False,
            "From": {"Name": hostile, "Address": "x@example.com"},
            "To": [{"Name": "", "Address": hostile}],
            "Subject": hostile,
            "Snippet": "</li><script>",
            "Tags": [hostile],
            "Warnings": [hostile],
            "Created": NOW.isoformat(),
            "Size": 10,
            "Attachments": 0,
        },
        "/p/acme",
        NOW,
    )
    assert "<img" not in row and "<script>" not in row
    assert row.count("</li>") == 1 and row.endswith("</li>")
    assert 'href="/p/acme/message/a%2Fb%20c" data-id="a/b c"' in row
    assert row.startswith('<li class="row-item"><a class="row unread"')
