"""Slow down password guessing: count failed authentications per client network.

After `max_failures` failures within `window` seconds from one client, further attempts are
refused without checking the credentials until the oldest failure is `window` old. Clients are
IPv4 addresses, or IPv6 /64 networks (one host commonly holds a whole /64). Time comes from the
injected clock.

An attempt is counted *before* the credentials are checked (`reserve()` counts it as a
failure; `succeeded()` takes it back when the credentials were right): checking takes a thread
hop and a digest, and counting only afterwards let 100 parallel AUTH from one client all be
checked under a limit of 5.
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
        return token

    def succeeded(self, host: str, token: float) -> None:
        """The attempt reserved with `token` was right after all: it is not a failure."""
        failures = self._failures.get(client_key(host))
        if failures is None:
            return
        try:
            failures.remove(token)
        except ValueError:
            return
        if not failures:
            del self._failures[client_key(host)]

    def _forget_idle(self) -> None:
        for key in list(self._failures):
            self._recent(key)
        while len(self._failures) >= MAX_TRACKED:  # all recent: drop the oldest entries
            del self._failures[next(iter(self._failures))]
