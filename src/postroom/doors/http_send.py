"""The HTTP sending door of the testing API: `POST /api/v1/send` (Mailpit's send endpoint).

The API edge (api/mailpit.py) turns the JSON body into an envelope and a MIME message
(api/send.py); this door stamps it with the facts of the request (door "http", the client's
address) and hands it to the acceptance pipeline, into the project the API key belongs to.
"""

from __future__ import annotations

import secrets

from postroom.core.types import Envelope, IncomingMessage, SessionInfo
from postroom.doors.common import Acceptor

HELO = "http-api"  # what Received: names as the client's greeting


class HttpSendDoor:
    def __init__(self, pipeline: Acceptor, hostname: str) -> None:
        self._pipeline = pipeline
        self._hostname = hostname

    async def send(
        self, envelope: Envelope, data: bytes, project: str, peer_host: str, peer_port: int
    ) -> str:
        """Accept one message built from an HTTP request; its id once durably stored."""
        session = SessionInfo(
            door="http",
            session_id=secrets.token_hex(6),
            peer_host=peer_host,
            peer_port=peer_port,
            server_name=self._hostname,
            helo=HELO,
        )
        return await self._pipeline.accept(IncomingMessage(envelope, data, session), project)
