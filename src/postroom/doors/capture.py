"""The capture door: the testing SMTP listener (default 127.0.0.1:1025).

Any sender, any recipient, any credentials (the user name is recorded); every message goes
into the default capture project, which never relays, unless a capture route sends it into
another capture project by SMTP user name or recipient (core/capture_routes.py; the
`CaptureRouter` below keeps the rules). It asks nothing at MAIL and RCPT, so
the session accepts addresses without a round trip to the door (the hot path), unless
Chaos is enabled (--enable-chaos): then it asks, and answers the injected errors of the
triggers of the project the mail goes into (doors/chaos.py): the project a `user:` route
names for the SMTP user (at AUTH, MAIL and RCPT), or at RCPT the project the recipient's
`rcpt:` route names; the default project otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from postroom.core.capture_routes import CaptureRoute, route
from postroom.core.clock import Clock
from postroom.core.errors import Refusal, RefusalKind
from postroom.core.platform import DEFAULT_PROJECT
from postroom.core.types import DoorName, IncomingMessage, SessionInfo
from postroom.doors.chaos import Chaos
from postroom.doors.common import Acceptor, SessionLog

ROUTES_TTL = 5.0  # seconds the stored rules are trusted (other processes' changes)


class CaptureRouter:
    """The capture routes: `--capture-route` rules first, then the stored ones, read again
    after `ttl` seconds (injected clock) or at once after `invalidate()` (a change made in
    this process). Also the mode of each project, so that mail is never routed into a live
    project or one that is gone."""

    def __init__(
        self,
        options: Sequence[CaptureRoute],
        stored: Callable[[], Sequence[CaptureRoute]] | None,
        modes: Callable[[], Mapping[str, str]],
        clock: Clock,
        ttl: float = ROUTES_TTL,
    ) -> None:
        self.options = tuple(options)
        self._stored = stored
        self._modes = modes
        self._clock = clock
        self._ttl = ttl
        self._rules: tuple[CaptureRoute, ...] = self.options
        self._projects: Mapping[str, str] = {}
        self._read_at: float | None = None

    def invalidate(self) -> None:
        self._read_at = None

    async def rules(self) -> tuple[tuple[CaptureRoute, ...], Mapping[str, str]]:
        """(every rule in the order tried, project -> mode)."""
        now = self._clock.monotonic()
        if self._read_at is None or now - self._read_at >= self._ttl:
            stored = await asyncio.to_thread(self._stored) if self._stored else ()
            self._projects = await asyncio.to_thread(self._modes)
            self._rules = (*self.options, *stored)
            self._read_at = now
        return self._rules, self._projects

    async def route(
        self, username: str | None, recipients: Sequence[str], default: str
    ) -> dict[str, list[int]]:
        """Project -> indexes of its recipients (core/capture_routes.route); a Refusal
        (temporary: an admin can fix it) when a rule names a project that is not a capture
        project (any more)."""
        rules, modes = await self.rules()
        if not rules:
            return {default: list(range(len(recipients)))}
        routed = route(rules, username, recipients, default)
        for project in routed:
            if project != default and modes.get(project) != "capture":
                what = "no longer exists" if project not in modes else "is not a capture project"
                raise Refusal(
                    RefusalKind.PROJECT_GONE,
                    f"A capture route sends this mail to project {project}, which {what}; "
                    "an admin must change the route or the project",
                )
        return routed

    async def project_of(self, username: str | None, recipient: str | None, default: str) -> str:
        """The project mail of this SMTP user (and, at RCPT, to this recipient) goes into."""
        rules, _ = await self.rules()
        if not rules:
            return default
        routed = route(rules, username, [recipient] if recipient is not None else [], default)
        return next(iter(routed))


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
        router: CaptureRouter | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._log = log
        self._project = project
        self._chaos = chaos
        self._router = router
        self.checks_sender = self.checks_recipient = chaos is not None

    async def authenticate(
        self, mechanism: str, username: str, password: str, session: SessionInfo
    ) -> str | None:
        if self._chaos is not None:
            refusal = self._chaos.strike(await self._project_of(username, None), "Authentication")
            if refusal is not None:
                raise refusal
        return username  # any credentials; the user name is recorded with the message

    def check_sender(
        self, session: SessionInfo, address: str, params: Mapping[str, str]
    ) -> Refusal | Awaitable[Refusal | None] | None:
        if self._chaos is None:
            return None
        if self._router is None:
            return self._chaos.strike(self._project, "Sender")
        return self._strike_routed(session.auth_user, None, "Sender")

    def check_recipient(
        self, session: SessionInfo, mail_from: str, address: str, params: Mapping[str, str]
    ) -> Refusal | Awaitable[Refusal | None] | None:
        if self._chaos is None:
            return None
        if self._router is None:
            return self._chaos.strike(self._project, "Recipient")
        return self._strike_routed(session.auth_user, address, "Recipient")

    async def _project_of(self, username: str | None, recipient: str | None) -> str:
        if self._router is None:
            return self._project
        return await self._router.project_of(username, recipient, self._project)

    async def _strike_routed(
        self, username: str | None, recipient: str | None, stage: str
    ) -> Refusal | None:
        """Chaos in the project a capture route sends this mail to (the rules may need a read
        of the stored ones, hence awaited)."""
        assert self._chaos is not None
        return self._chaos.strike(await self._project_of(username, recipient), stage)

    async def deliver(self, incoming: IncomingMessage) -> str:
        if self._router is None:
            return await self._pipeline.accept(incoming, self._project)
        envelope = incoming.envelope
        routed = await self._router.route(
            incoming.session.auth_user, envelope.recipients, self._project
        )
        ids = []
        for project, indexes in routed.items():
            message = incoming
            if len(indexes) != len(envelope.recipients):
                # A copy per project, with that project's recipients only (its Bcc).
                params = envelope.rcpt_params
                message = replace(
                    incoming,
                    envelope=replace(
                        envelope,
                        recipients=tuple(envelope.recipients[i] for i in indexes),
                        rcpt_params=tuple(params[i] for i in indexes if i < len(params)),
                    ),
                )
            ids.append(await self._pipeline.accept(message, project))
        return ids[0]

    def session_ended(self, summary: dict[str, Any]) -> None:
        self._log.session_ended(summary)

    def refused(self, door: DoorName, reason: str) -> None:
        self._log.refused(door, reason)
