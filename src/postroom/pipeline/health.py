"""Whether the store takes new messages, as the last commits tell (for `/readyz`).

Every door's messages are committed through the acceptance pipeline, which reports each
outcome here. When a commit fails (a full disk, a lost database), the server is not ready
until a commit succeeds again: a load balancer then sends mail elsewhere instead of to a
server that can only answer 451. Since a server taken out of rotation receives nothing to try
with, the failure stops counting `RETRY_AFTER` seconds after the last failed attempt; traffic
comes back, and either succeeds or fails again (not ready again).
"""

from __future__ import annotations

from dataclasses import dataclass

from postroom.core.clock import Clock

__all__ = ["RETRY_AFTER", "WriteHealth"]

RETRY_AFTER = 30.0  # seconds after the last failed commit before trying traffic again
_MAX_REASON = 300


@dataclass(slots=True)
class _Failure:
    reason: str
    since: float
    last: float


def _reason(error: BaseException) -> str:
    """The first line of the error (a database error's message follows its SQL and parameters
    on the next lines, which may hold message content: never shown)."""
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    return first[:_MAX_REASON]


class WriteHealth:
    def __init__(self, clock: Clock, retry_after: float = RETRY_AFTER) -> None:
        self._clock = clock
        self.retry_after = retry_after
        self._failure: _Failure | None = None

    def failed(self, error: BaseException) -> None:
        now = self._clock.monotonic()
        since = self._failure.since if self._failure is not None else now
        self._failure = _Failure(_reason(error), since, now)

    def succeeded(self) -> None:
        self._failure = None

    def problem(self) -> str | None:
        """Why the store is not taking writes now; None when it is (or may be again)."""
        failure = self._failure
        if failure is None:
            return None
        now = self._clock.monotonic()
        if now - failure.last >= self.retry_after:
            return None
        return (
            f"storage refuses writes (for {now - failure.since:.0f} s; the last commit failed "
            f"{now - failure.last:.0f} s ago: {failure.reason})"
        )
