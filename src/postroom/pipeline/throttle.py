"""Slow down password guessing: count failed authentications per client network.

After `max_failures` failures within `window` seconds from one client, further attempts are
refused without checking the credentials until the oldest failure is `window` old. Clients are
IPv4 addresses, or IPv6 /64 networks (one host commonly holds a whole /64). Time comes from the
injected clock.

An attempt is counted *before* the credentials are checked (`attempt()` reserves it as a
failure; `forgive()` takes it back when the check succeeds or could not be made): checking
takes a thread hop and a digest, and counting only afterwards let 100 parallel attempts from
one client all be checked under a limit of 5.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from postroom.core.clock import Clock
from postroom.core.netkey import client_key

__all__ = ["MAX_TRACKED", "Attempt", "AuthThrottle", "client_key"]

MAX_TRACKED = 100_000  # clients remembered at once; beyond, the idle ones are forgotten first


@dataclass(frozen=True, slots=True)
class Attempt:
    """One reserved attempt: counted as a failure unless forgiven."""

    key: str
    stamp: float


_UNCOUNTED = Attempt("", 0.0)  # what attempt() hands out when throttling is off


class AuthThrottle:
    def __init__(self, max_failures: int, window: float, clock: Clock) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

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

    def attempt(self, host: str) -> Attempt | None:
        """Reserve an attempt for the client, counted as a failure from now on; None when the
        client is throttled (then check nothing). Call `forgive()` when the check succeeds."""
        if self.max_failures <= 0:
            return _UNCOUNTED
        key = client_key(host)
        failures = self._recent(key)
        if failures is not None and len(failures) >= self.max_failures:
            return None
        stamp = self._append(key, failures)
        return Attempt(key, stamp)

    def forgive(self, attempt: Attempt) -> None:
        """The reserved attempt succeeded (or was never judged): it does not count."""
        if attempt is _UNCOUNTED:
            return
        failures = self._failures.get(attempt.key)
        if failures is None:
            return
        try:
            failures.remove(attempt.stamp)
        except ValueError:
            return  # aged out of the window meanwhile
        if not failures:
            del self._failures[attempt.key]

    def failure(self, host: str) -> None:
        """Count a failure that was not reserved with `attempt()`."""
        if self.max_failures <= 0:
            return
        key = client_key(host)
        self._append(key, self._recent(key))

    def _append(self, key: str, failures: deque[float] | None) -> float:
        if failures is None:
            if len(self._failures) >= MAX_TRACKED:
                self._forget_idle()
            failures = self._failures[key] = deque()
        stamp = self._clock.monotonic()
        failures.append(stamp)
        while len(failures) > self.max_failures:
            failures.popleft()
        return stamp

    def _forget_idle(self) -> None:
        for key in list(self._failures):
            self._recent(key)
        while len(self._failures) >= MAX_TRACKED:  # all recent: drop the oldest entries
            del self._failures[next(iter(self._failures))]
