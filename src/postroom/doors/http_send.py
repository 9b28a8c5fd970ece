"""The HTTP sending door of the testing API: `POST /api/v1/send` (Mailpit's send endpoint).

The API edge (api/mailpit.py) turns the JSON body into an envelope and a MIME message
(api/send.py); this door stamps it with the facts of the request (door "http", the client's
address) and hands it to the acceptance pipeline, into the project the API key belongs to.

* A project an admin suspended, capture or live, is refused (pipeline/suspension.py: the
  submission checks refuse a live one's messages the same way).
* A capture project (and the open inbox) stores the message as captured, as Mailpit does:
  no identity checks, no quota, no signature.
* A live project's message runs the same submission checks as the SMTP submission doors
  (pipeline/submission.py: From, verified identities within the key's project, quotas, header
  fix-ups, DKIM) and is queued; a refusal is raised as a core.errors.Refusal, which the API
  renders (403 identity not verified, 429 quota and rate with Retry-After, ...).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from postroom.core.errors import PostroomError
from postroom.core.platform import DEFAULT_PROJECT
from postroom.core.types import DoorName, Envelope, IncomingMessage, SessionInfo, Summary
from postroom.doors.common import Acceptor
from postroom.pipeline.projects import ProjectDirectory
from postroom.pipeline.submission import Submitter
from postroom.pipeline.suspension import suspension_refusal

HELO = "http-api"  # what Received: names as the client's greeting


class BatchAcceptor(Acceptor, Protocol):
    """The acceptance pipeline with its entry for the messages of one request."""

    async def accept_many(
        self,
        incomings: Sequence[IncomingMessage],
        project: str = DEFAULT_PROJECT,
        *,
        submitter: Submitter | None = None,
        suppressed_out: dict[str, tuple[str, str]] | None = None,
    ) -> list[str | PostroomError]: ...


class HttpSendDoor:
    def __init__(
        self, pipeline: BatchAcceptor, hostname: str, directory: ProjectDirectory | None = None
    ) -> None:
        """`directory` tells capture projects from live ones; without it (no platform store)
        every message is captured."""
        self._pipeline = pipeline
        self._hostname = hostname
        self._directory = directory

    async def send(
        self,
        envelope: Envelope,
        data: bytes,
        project: str,
        peer_host: str,
        peer_port: int,
        principal: str = "api",
        door: DoorName = "http",
        suppressed_out: dict[str, tuple[str, str]] | None = None,
        metadata: Mapping[str, str] | None = None,
        send_at: datetime | None = None,
        tags: tuple[str, ...] = (),
        summary: Summary | None = None,
    ) -> str:
        """Accept one message built from an HTTP request; its id once durably stored.
        `principal` names who vouches for it in records and logs ("api:<key id>"); `door` is
        "ses" for the SES-compatible API; `suppressed_out` receives the suppressed recipients
        (see AcceptancePipeline.accept); `tags` are stored with the message, not put in it;
        `summary`: the message's, when known without parsing it (the send APIs')."""
        session = self._session(door, peer_host, peer_port)
        incoming = IncomingMessage(
            envelope,
            data,
            session,
            metadata=metadata or {},
            send_at=send_at,
            tags=tags,
            summary=summary,
        )
        if self._directory is not None:
            view = await self._directory.get(project)
            refusal = suspension_refusal(view.project)  # a capture project's too
            if refusal is not None:
                raise refusal
            if view.project.mode == "live":
                submitter = Submitter(project, principal)
                return await self._pipeline.accept(
                    incoming, project, submitter=submitter, suppressed_out=suppressed_out
                )
        return await self._pipeline.accept(incoming, project)

    def _session(self, door: DoorName, peer_host: str, peer_port: int) -> SessionInfo:
        """A new session of this door for one HTTP request."""
        return SessionInfo(
            door=door,
            session_id=secrets.token_hex(6),
            peer_host=peer_host,
            peer_port=peer_port,
            server_name=self._hostname,
            helo=HELO,
        )

    async def send_many(
        self,
        messages: Sequence[Outgoing],
        project: str,
        peer_host: str,
        peer_port: int,
        principal: str = "api",
        door: DoorName = "http",
        suppressed_out: dict[str, tuple[str, str]] | None = None,
    ) -> list[str | PostroomError]:
        """`send` for the messages of one request (SendBulkEmail): one session, and the
        pipeline's accept_many, which checks, signs and stores them together while accepting
        or refusing each on its own; each one's id once durably stored, or its error."""
        session = self._session(door, peer_host, peer_port)
        incomings = [
            IncomingMessage(
                m.envelope,
                m.data,
                session,
                metadata=m.metadata or {},
                send_at=m.send_at,
                tags=m.tags,
                summary=m.summary,
            )
            for m in messages
        ]
        if self._directory is not None:
            view = await self._directory.get(project)
            refusal = suspension_refusal(view.project)  # a capture project's too
            if refusal is not None:
                return [refusal] * len(messages)
            if view.project.mode == "live":
                return await self._pipeline.accept_many(
                    incomings,
                    project,
                    submitter=Submitter(project, principal),
                    suppressed_out=suppressed_out,
                )
        return await self._pipeline.accept_many(incomings, project)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message of a `send_many` request: what `send` takes besides the request's facts."""

    envelope: Envelope
    data: bytes
    metadata: Mapping[str, str] | None = None
    send_at: datetime | None = None
    tags: tuple[str, ...] = ()
    summary: Summary | None = None
