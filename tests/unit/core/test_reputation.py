"""The reputation guard's judgement (pure): no level below the minimum volume; warning and
pause from the bounce rate or the complaint rate, at the thresholds exactly; rates parsed from
the options, bad ones named."""

from __future__ import annotations

import pytest

from postroom.core.errors import ConfigError
from postroom.core.reputation import Counts, Thresholds, judge, parse_rates, rates

LIMITS = Thresholds(min_volume=100)


@pytest.mark.parametrize(
    ("counts", "level", "why"),
    [
        (Counts(99, 99, 99), "ok", ""),  # below the volume: nothing counts yet
        (Counts(1000, 49, 0), "ok", ""),
        (Counts(1000, 50, 0), "warning", "bounce rate 5% over 7 days (50 of 1000; warning at 5%)"),
        (Counts(1000, 100, 0), "paused", "bounce rate 10%"),
        (Counts(1000, 0, 1), "warning", "complaint rate 0.1% over 7 days (1 of 1000"),
        (Counts(1000, 0, 5), "paused", "complaint rate 0.5%"),
        (Counts(1000, 60, 5), "paused", "complaint rate 0.5%"),  # the worse of the two wins
        (Counts(200, 0, 0), "ok", ""),
    ],
)
def test_judge(counts: Counts, level: str, why: str) -> None:
    got_level, got_why = judge(counts, LIMITS)
    assert got_level == level
    assert got_why.startswith(why)


def test_rates_of_nothing_are_zero() -> None:
    assert rates(Counts()) == {
        "sends": 0,
        "bounces": 0,
        "complaints": 0,
        "bounce_rate": 0.0,
        "complaint_rate": 0.0,
    }
    assert rates(Counts(8, 1, 0))["bounce_rate"] == 0.125


def test_parse_rates() -> None:
    assert parse_rates(("5%", "10%"), "--x") == (0.05, 0.1)
    assert parse_rates(("0.001", "0.5%"), "--x") == (0.001, 0.005)
    for bad, message in (
        (("5%",), "expected WARN,PAUSE"),
        (("five", "10%"), "is not a rate"),
        (("0%", "10%"), "above 0"),
        (("20%", "10%"), "not be above the pause rate"),
        (("5%", "150%"), "at most 100%"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_rates(bad, "--reputation-bounce-rates")
