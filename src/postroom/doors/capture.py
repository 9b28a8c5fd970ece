"""The capture door: the testing SMTP listener (default 127.0.0.1:1025).

Any sender, any recipient, any credentials (the user name is recorded); every message goes
into the default capture project, which never relays. It asks nothing at MAIL and RCPT, so
the session accepts addresses without a round trip to the door (the hot path), unless
Chaos is enabled (--enable-chaos): then it asks, and answers the injected errors of the
project's triggers (doors/chaos.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from postroom.core.errors import Refusal
from postroom.core.platform import DEFAULT_PROJECT
from postroom.core.types import DoorName, IncomingMessage, SessionInfo
from postroom.doors.chaos import Chaos
from postroom.doors.common import Acceptor, SessionLog


class CaptureDoor:
    """An `SmtpDoor` (smtp/server.py) for the capture listener."""

    checks_sender = False
    checks_recipient = False

    def __init__(
        self,
        pipeline: Acceptor,
        log: SessionLog,
        project: str = DEFAULT_PROJECT,
        chaos: Chaos | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._log = log
        self._project = project
        self._chaos = chaos
        self.checks_sender = self.checks_recipient = chaos is not None

    async def authenticate(
        self, mechanism: str, username: str, password: str, session: SessionInfo
    ) -> str | None:
        if self._chaos is not None:
            refusal = self._chaos.strike(self._project, "Authentication")
            if refusal is not None:
                raise refusal
        return username  # any credentials; the user name is recorded with the message

    def check_sender(
        self, session: SessionInfo, address: str, params: Mapping[str, str]
    ) -> Refusal | None:
        return self._chaos.strike(self._project, "Sender") if self._chaos else None

    def check_recipient(
        self, session: SessionInfo, mail_from: str, address: str, params: Mapping[str, str]
    ) -> Refusal | None:
        return self._chaos.strike(self._project, "Recipient") if self._chaos else None

    async def deliver(self, incoming: IncomingMessage) -> str:
        return await self._pipeline.accept(incoming, self._project)

    def session_ended(self, summary: dict[str, Any]) -> None:
        self._log.session_ended(summary)

    def refused(self, door: DoorName, reason: str) -> None:
        self._log.refused(door, reason)
