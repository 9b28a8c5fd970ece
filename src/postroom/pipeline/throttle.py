"""Slow down password guessing: count failed authentications per client network.

After `max_failures` failures within `window` seconds from one client, further attempts are
refused without checking the credentials until the oldest failure is `window` old. Clients are
IPv4 addresses, or IPv6 /64 networks (one host commonly holds a whole /64). Time comes from the
injected clock.
"""

from __future__ import annotations

import ipaddress
from collections import deque

from postroom.core.clock import Clock

MAX_TRACKED = 100_000  # clients remembered at once; beyond, the idle ones are forgotten first


def client_key(host: str) -> str:
    """The throttling key of a peer address: the IPv4 address, or the IPv6 /64."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


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

    def _forget_idle(self) -> None:
        for key in list(self._failures):
            self._recent(key)
        while len(self._failures) >= MAX_TRACKED:  # all recent: drop the oldest entries
            del self._failures[next(iter(self._failures))]
