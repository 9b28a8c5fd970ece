"""Pure conversions of the storage codec (no database involved)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from postroom.storage import codec


def test_micros_round_trip_exactly() -> None:
    for when in (
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 30, 5, 999999, tzinfo=UTC),
        datetime(2026, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=-7))),
        datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
    ):
        assert codec.from_micros(codec.to_micros(when)) == when
    assert codec.to_micros(datetime(1970, 1, 1, 0, 0, 1)) == 1_000_000  # naive is UTC


def test_clean_text() -> None:
    assert codec.clean_text("plain \u00e9t\u00e9") == "plain \u00e9t\u00e9"
    assert codec.clean_text("a\x00b") == "a\ufffdb"
    assert codec.clean_text("x\udcffy") == "x?y"
    assert codec.clean_row(("a\x00", 1, None, b"\x00")) == ("a\ufffd", 1, None, b"\x00")


def test_normalise_tags() -> None:
    assert codec.normalise_tags([" Work ", "work", "", "  ", "Later", "LATER"]) == [
        "Work",
        "Later",
    ]


def test_message_row_matches_the_column_list() -> None:
    from tests.integration.storage.factory import make_message

    from postroom.core.clock import FakeClock
    from postroom.storage.schema import messages

    row = codec.message_row(make_message(FakeClock()))
    assert len(row) == len(codec.MESSAGE_COLUMNS)
    assert set(codec.MESSAGE_COLUMNS) == {c.name for c in messages.columns} - {"seq"}
