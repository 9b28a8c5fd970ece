"""The capture door: the testing SMTP listener (default 127.0.0.1:1025).

Any sender, any recipient, any credentials (the user name is recorded); every message goes
into the default capture project, which never relays. It asks nothing at MAIL and RCPT, so
the session accepts addresses without a round trip to the door (the hot path).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from postroom.core.errors import Refusal
from postroom.core.platform import DEFAULT_PROJECT
from postroom.core.types import DoorName, IncomingMessage, SessionInfo
from postroom.doors.common import Acceptor, SessionLog


class CaptureDoor:
    """An `SmtpDoor` (smtp/server.py) for the capture listener."""

    checks_sender = False
    checks_recipient = False

    def __init__(self, pipeline: Acceptor, log: SessionLog, project: str = DEFAULT_PROJECT) -> None:
        self._pipeline = pipeline
        self._log = log
        self._project = project

    async def authenticate(
        self, mechanism: str, username: str, password: str, session: SessionInfo
    ) -> str | None:
        return username  # any credentials; the user name is recorded with the message

    def check_sender(
        self, session: SessionInfo, address: str, params: Mapping[str, str]
    ) -> Refusal | None:
        return None

    def check_recipient(
        self, session: SessionInfo, mail_from: str, address: str, params: Mapping[str, str]
    ) -> Refusal | None:
        return None

    async def deliver(self, incoming: IncomingMessage) -> str:
        return await self._pipeline.accept(incoming, self._project)

    def session_ended(self, summary: dict[str, Any]) -> None:
        self._log.session_ended(summary)

    def refused(self, door: DoorName, reason: str) -> None:
        self._log.refused(door, reason)
