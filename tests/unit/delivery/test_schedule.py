from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from postroom.core.errors import ConfigError
from postroom.delivery.schedule import RetrySchedule

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_documented_delays_then_doubling_to_the_cap() -> None:
    schedule = RetrySchedule()
    minutes = [schedule.delay(n) / 60 for n in range(1, 10)]
    assert minutes == [1, 5, 15, 30, 60, 120, 240, 240, 240]
    assert schedule.delay(10_000) == schedule.cap


def test_jitter_stays_within_bounds_and_varies() -> None:
    schedule = RetrySchedule()
    rng = random.Random(7)
    delays = {
        (schedule.next_attempt(3, T0, T0, rng) - T0).total_seconds()  # type: ignore[operator]
        for _ in range(200)
    }
    assert min(delays) >= 900 * 0.85 and max(delays) <= 900 * 1.15
    assert len(delays) > 100


def test_lifetime_ends_retries_and_last_attempt_is_at_the_deadline() -> None:
    schedule = RetrySchedule(lifetime=3600, jitter=0)
    rng = random.Random(1)
    now = T0 + timedelta(minutes=50)
    assert schedule.next_attempt(4, now, T0, rng) == T0 + timedelta(hours=1)
    assert schedule.next_attempt(5, T0 + timedelta(hours=1), T0, rng) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"first_delays": ()}, {"first_delays": (0,)}, {"cap": 10}, {"lifetime": 0}, {"jitter": 1}],
)
def test_bad_schedules_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        RetrySchedule(**kwargs)  # type: ignore[arg-type]


def test_failures_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RetrySchedule().delay(0)
