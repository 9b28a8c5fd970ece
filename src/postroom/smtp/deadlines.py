"""When an SMTP session must have done what, as pure arithmetic on times the edge reads from
its injected clock. The sans-IO session never looks at a clock; the edge tells this object
what happened and when, sets one timer for `next()`, and asks `expired()` when it fires.

The limits, all per connection:

* **Command**: a whole command line must arrive within `command_timeout` of the moment the
  server is ready for it (its prompt: the greeting, the previous reply). Octets that do not
  complete a line do not move this deadline, so a byte every few seconds cannot keep a session
  open. RFC 5321 §4.5.3.2.7 asks servers to wait at least 5 minutes for a command: the default.
* **Data block** (DATA, or one BDAT chunk): at most `data_timeout` without an octet (RFC 5321
  §4.5.3.2.6, 3 minutes by default), and once the block is `data_timeout` old, on average at
  least `data_min_rate` octets per second since it began. So every block gets the RFC's
  3 minutes whatever its speed; after that a client must have kept up the rate: a block must
  have received `rate × (elapsed - data_timeout)` octets by `elapsed`. At 1 KiB/s a 40 MB
  message may take 11 hours, while a byte every 3 s is cut at 3 minutes.
* **Session**: the whole connection ends `session_lifetime` after it opened, whatever it does
  (NOOP every 4 minutes would otherwise hold it forever).

`credit()` says how far a connection has paid its way, for choosing whom to close when the
server is full: waiting for a command, the last time it moved towards delivering mail
(`advanced()`: MAIL, RCPT, a message...; NOOP or RSET every second does not count); in a data
block the time its octets would cover at the minimum rate (a fast sender runs ahead of the
clock).
"""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

Expiry: TypeAlias = Literal["timeout", "too_slow", "session_lifetime"]


class Deadlines:
    __slots__ = (
        "_advanced",
        "_command_timeout",
        "_data_timeout",
        "_end",
        "_in_data",
        "_last",
        "_octets",
        "_rate",
        "_since",
    )

    def __init__(
        self,
        now: float,
        *,
        command_timeout: float,
        data_timeout: float,
        data_min_rate: float = 0.0,
        session_lifetime: float = 0.0,
    ) -> None:
        self._command_timeout = command_timeout
        self._data_timeout = data_timeout
        self._rate = data_min_rate
        self._end = now + session_lifetime if session_lifetime > 0 else math.inf
        self._in_data = False
        self._since = now  # the prompt (command) or the start of the block (data)
        self._last = now  # the last octet of the block
        self._octets = 0
        self._advanced = now  # the last step towards delivering mail

    @property
    def in_data(self) -> bool:
        return self._in_data

    def command(self, now: float) -> None:
        """The server is ready for a command from `now` on."""
        self._in_data = False
        self._since = now

    def advanced(self, now: float) -> None:
        """The session moved towards delivering mail (SmtpSession.steps changed)."""
        self._advanced = now

    def data(self, now: float, octets: int = 0) -> None:
        """A data block begins at `now` (`octets` of it may have come with its command)."""
        self._in_data = True
        self._since = self._last = now
        self._octets = octets

    def received(self, now: float, octets: int) -> None:
        """Octets arrived without completing anything (a partial line, or block data)."""
        if self._in_data:
            self._last = now
            self._octets += octets

    def next(self) -> tuple[float, Expiry]:
        """The earliest deadline and what it is."""
        at: float
        why: Expiry = "timeout"
        if self._in_data:
            at = self._last + self._data_timeout
            if self._rate > 0:
                slow = self._since + self._data_timeout + self._octets / self._rate
                if slow < at:
                    at, why = slow, "too_slow"
        else:
            at = self._since + self._command_timeout
        if self._end <= at:
            return self._end, "session_lifetime"
        return at, why

    def expired(self, now: float) -> Expiry | None:
        at, why = self.next()
        return why if now >= at else None

    def credit(self) -> float:
        if self._in_data:
            if self._rate > 0:
                return self._since + self._octets / self._rate
            return self._last
        return self._advanced
