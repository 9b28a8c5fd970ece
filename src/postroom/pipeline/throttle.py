"""Slow down password guessing: count failed authentications per client network.

After `max_failures` failures within `window` seconds from one client, further attempts are
refused without checking the credentials until the oldest failure is `window` old. Clients are
IPv4 addresses, or IPv6 /64 networks (one host commonly holds a whole /64). Time comes from the
injected clock.

An attempt is counted *before* the credentials are checked (`reserve()` counts it as a
failure; `succeeded()` takes it back when the credentials were right, `failed()` leaves it):
checking takes a thread hop and a digest, and counting only afterwards let 100 parallel AUTH
from one client all be checked under a limit of 5. While attempts are in flight, `waiting()`
tells a refused one that it is refused only because of them: the caller waits for them to be
settled and asks again, so that correct parallel logins (a client's connection pool) are
checked a few at a time instead of refused.
"""

from __future__ import annotations

from collections import deque

from postroom.core.clock import Clock
from postroom.core.netkey import client_key

__all__ = ["MAX_TRACKED", "AuthThrottle", "client_key"]

MAX_TRACKED = 100_000  # clients remembered at once; beyond, the idle ones are forgotten first


class AuthThrottle:
    def __init__(self, max_failures: int, window: float, clock: Clock) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = {}  # reserved and not yet settled, per client

    def _recent(self, key: str) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        horizon = self._clock.monotonic() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def blocked(self, host: str) -> bool:
        """True when the client has used up its failures for now."""
        if self.max_failures <= 0:
            return False
        failures = self._recent(client_key(host))
        return failures is not None and len(failures) >= self.max_failures

    def failure(self, host: str) -> None:
        if self.max_failures <= 0:
            return
        key = client_key(host)
        failures = self._recent(key)
        if failures is None:
            if len(self._failures) >= MAX_TRACKED:
                self._forget_idle()
            failures = self._failures[key] = deque()
        failures.append(self._clock.monotonic())
        while len(failures) > self.max_failures:
            failures.popleft()

    def reserve(self, host: str) -> float | None:
        """Count an attempt as failed before checking it, so that parallel attempts cannot all
        pass `blocked` before the first failure is known. None when the client has no attempt
        left; else a token to give to `succeeded` if the credentials were right."""
        if self.max_failures <= 0:
            return 0.0
        if self.blocked(host):
            return None
        key = client_key(host)
        failures = self._recent(key)
        if failures is None:
            if len(self._failures) >= MAX_TRACKED:
                self._forget_idle()
            failures = self._failures[key] = deque()
        token = self._clock.monotonic()
        failures.append(token)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return token

    def waiting(self, host: str) -> bool:
        """True when a refused attempt would have room once the attempts in flight are
        settled (it is not the client's failures that block it)."""
        if self.max_failures <= 0:
            return False
        key = client_key(host)
        pending = self._in_flight.get(key, 0)
        failures = self._recent(key)
        done = 0 if failures is None else len(failures) - pending
        return pending > 0 and done < self.max_failures

    def _settle(self, key: str) -> None:
        left = self._in_flight.get(key, 0) - 1
        if left > 0:
            self._in_flight[key] = left
        else:
            self._in_flight.pop(key, None)

    def failed(self, host: str, token: float) -> None:
        """The attempt reserved with `token` was wrong: it stays counted as a failure."""
        self._settle(client_key(host))

    def succeeded(self, host: str, token: float) -> None:
        """The attempt reserved with `token` was right after all: it is not a failure."""
        key = client_key(host)
        self._settle(key)
        failures = self._failures.get(key)
        if failures is None:
            return
        try:
            failures.remove(token)
        except ValueError:
            return
        if not failures:
            del self._failures[key]

    def _forget_idle(self) -> None:
        for key in list(self._failures):
            self._recent(key)
        while len(self._failures) >= MAX_TRACKED:  # all recent: drop the oldest entries
            del self._failures[next(iter(self._failures))]
