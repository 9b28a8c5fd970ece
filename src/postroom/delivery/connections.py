"""Idle SMTP connections kept for reuse: several messages to one site over one connection.

After its transactions a connection goes back here instead of closing, unless it has carried
the site's `messages_per_connection` or the server closed it. The next delivery to the same
next hop (address, port, local source and client policy) takes it, says RSET to prove it alive
and sends; a connection idle longer than the worker's limit is closed with QUIT. A kept
connection keeps its place in the shaper's count of the site's connections, so a site's limit
counts what is really open on the receiver.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from postroom.smtp.client import SmtpClient


@dataclass(frozen=True, slots=True)
class NextHop:
    """What a connection is good for: its peer, its local source and the client policy."""

    address: str
    port: int
    source: str  # the local address ("" = the system's choice)
    helo: str  # the EHLO name it announced
    policy: Hashable  # relay and TLS mode: a connection made under others is not reused


@dataclass(eq=False, slots=True)
class Connection:
    """An open client connection and what the shaper knows it by."""

    client: SmtpClient
    hop: NextHop
    site: str
    source: str  # the shaper's source label
    messages: int = 0  # transactions carried
    idle_since: float = 0.0
    unproven: bool = False  # reused without an RSET round trip: not yet known to be alive


class ConnectionCache:
    """Idle connections by next hop, the most recently used taken first."""

    def __init__(self) -> None:
        self._idle: dict[NextHop, list[Connection]] = {}

    def __len__(self) -> int:
        return sum(len(kept) for kept in self._idle.values())

    def put(self, connection: Connection, now: float) -> None:
        connection.idle_since = now
        self._idle.setdefault(connection.hop, []).append(connection)

    def has(self, hop: NextHop) -> bool:
        return bool(self._idle.get(hop))

    def take(self, hop: NextHop) -> Connection | None:
        kept = self._idle.get(hop)
        if not kept:
            return None
        connection = kept.pop()
        if not kept:
            del self._idle[hop]
        return connection

    def take_for_site(self, site: str, source: str) -> Connection | None:
        """The longest idle connection to `site` from `source`, whatever its next hop (to
        close it when the site has no room for the connection wanted)."""
        candidates = [
            c for kept in self._idle.values() for c in kept if (c.site, c.source) == (site, source)
        ]
        oldest = min(candidates, key=lambda c: c.idle_since, default=None)
        if oldest is not None:
            self._remove(oldest)
        return oldest

    def expired(self, now: float, max_idle: float) -> list[Connection]:
        """Remove and return the connections idle for `max_idle` seconds or more."""
        old = [c for kept in self._idle.values() for c in kept if now - c.idle_since >= max_idle]
        for connection in old:
            self._remove(connection)
        return old

    def take_all(self) -> list[Connection]:
        every = [c for kept in self._idle.values() for c in kept]
        self._idle.clear()
        return every

    def _remove(self, connection: Connection) -> None:
        kept = self._idle[connection.hop]
        kept.remove(connection)
        if not kept:
            del self._idle[connection.hop]
