"""The ingest door: `postroom ingest` imports .eml files, Maildir folders and mbox files.

Each message is stored as captured in the default project, with an empty envelope (nothing
was transferred by SMTP); line endings are made CRLF first, as SMTP would have carried them.
"""

from __future__ import annotations

import secrets

from postroom.core.platform import DEFAULT_PROJECT
from postroom.core.types import Envelope, IncomingMessage, SessionInfo
from postroom.doors.common import Acceptor

HELO = "postroom-ingest"


class IngestDoor:
    def __init__(self, pipeline: Acceptor, hostname: str, project: str = DEFAULT_PROJECT) -> None:
        self._pipeline = pipeline
        self._hostname = hostname
        self._project = project

    async def ingest(self, raw: bytes) -> str:
        """Store one message read from a file; its id once durably stored."""
        data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        session = SessionInfo(
            door="ingest",
            session_id=secrets.token_hex(6),
            peer_host="",
            peer_port=0,
            server_name=self._hostname,
            helo=HELO,
        )
        envelope = Envelope(mail_from="", recipients=())
        return await self._pipeline.accept(IncomingMessage(envelope, data, session), self._project)
