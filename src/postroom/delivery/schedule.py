"""When to try a deferred recipient again, and when to give up.

The schedule (documented in the README): 1, 5, 15 and 30 minutes after the first, second,
third and fourth failed attempt, then doubling (60, 120, 240 min ...) up to a cap of 4 hours,
each delay spread by ±15 % jitter so that a burst of deferrals does not come back as a burst.
A recipient still undelivered when its queue lifetime (default 5 days, per project) has passed
since the message was accepted fails as expired (5.4.7): the next attempt is never scheduled
after the deadline, and the attempt at the deadline is the last.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from postroom.core.errors import ConfigError

FIRST_DELAYS = (60.0, 300.0, 900.0, 1800.0)  # seconds after failures 1..4
DEFAULT_CAP = 4 * 3600.0
DEFAULT_LIFETIME = 5 * 86400.0
JITTER = 0.15


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    first_delays: tuple[float, ...] = FIRST_DELAYS
    cap: float = DEFAULT_CAP
    lifetime: float = DEFAULT_LIFETIME
    jitter: float = JITTER

    def __post_init__(self) -> None:
        if not self.first_delays or any(d <= 0 for d in self.first_delays):
            raise ConfigError("retry delays must be positive")
        if self.cap < max(self.first_delays):
            raise ConfigError("the retry cap must be at least the longest first delay")
        if self.lifetime <= 0:
            raise ConfigError("the queue lifetime must be positive")
        if not 0 <= self.jitter < 1:
            raise ConfigError("retry jitter must be from 0 to less than 1")

    def delay(self, failures: int) -> float:
        """The delay (seconds, before jitter) after `failures` failed attempts (1 or more)."""
        if failures < 1:
            raise ValueError("failures must be at least 1")
        delays = self.first_delays
        if failures <= len(delays):
            return delays[failures - 1]
        doublings = failures - len(delays)
        if doublings > 32:  # 2**32 times anything here is far past any cap
            return self.cap
        return min(self.cap, delays[-1] * 2.0**doublings)

    def next_attempt(
        self, failures: int, now: datetime, accepted: datetime, rng: random.Random
    ) -> datetime | None:
        """When to try again after `failures` failed attempts, or None when the lifetime is
        over (the recipient expires now)."""
        deadline = accepted + timedelta(seconds=self.lifetime)
        if now >= deadline:
            return None
        spread = self.delay(failures) * (1.0 + rng.uniform(-self.jitter, self.jitter))
        return min(now + timedelta(seconds=spread), deadline)
