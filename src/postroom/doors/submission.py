"""The submission door (RFC 6409): who may submit on the submission listeners.

`SubmissionDoor` is the `SmtpDoor` (smtp/server.py) of the listeners on 587 (STARTTLS) and
465 (implicit TLS): AUTH PLAIN/LOGIN against SMTP credentials (with throttling of repeated
failures per client), IP credentials for clients that submit without AUTH, and the binding of
each session to its credential's project. At every MAIL the door reads the platform's change
counter (`PlatformStore.generation`, raised by the database in the transaction of any change
to projects, credentials, domains, DKIM keys and verified addresses, whoever makes it) on a
worker thread (one read for the MAILs of every session waiting meanwhile, each answered by a
read that began after its MAIL: pipeline/shared_reads.py); only when it moved since the
session's credential (or the IP credentials) were last read are they and their project read
again. So a credential deleted or changed (by the API, the CLI or plain SQL, in this process
or another on the same database) takes effect on the next transaction of a session already
open, without re-reading the rows at every MAIL.
The project snapshots of the pipeline (ProjectDirectory) are told of the counter too. The
checks of the message itself run in the pipeline (pipeline/submission.py).

Replies (code, enhanced code, text):

    530 5.7.0 Authentication required                     MAIL without AUTH or IP credential
                                                          (or the IP credential was removed)
    535 5.7.8 ... no longer valid ...                     MAIL after the session's credential
                                                          was deleted or replaced
    451 4.3.0 The project of these credentials ...        MAIL after the project was deleted
    550 5.7.1 Account suspended: ...                      MAIL while an admin has suspended
                                                          the project's sending (the counter
                                                          moves with it: the next MAIL of an
                                                          open session sees it)
    535 5.7.8 Authentication credentials invalid          wrong user name or password
    454 4.7.0 Too many failed authentication attempts...  AUTH while the client is throttled
    421 4.7.0 ... closing connection                      AUTH again in that session
    553 5.1.2 Recipient <...> ...                         a live project's recipient that is
                                                          an IP literal, has no domain or is
                                                          on a private name (pipeline/
                                                          destinations.py)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from postroom.core.clock import Clock
from postroom.core.errors import NotFound, Refusal, RefusalKind
from postroom.core.platform import IpCredential, PlatformStore, Project, SmtpCredential
from postroom.core.types import DoorName, IncomingMessage, SessionInfo
from postroom.doors.common import Acceptor, SessionLog
from postroom.metrics import Metrics
from postroom.pipeline.destinations import destination_refusal
from postroom.pipeline.identity import IpCredentials, check_smtp_credential
from postroom.pipeline.projects import NO_PROJECT, ProjectDirectory
from postroom.pipeline.shared_reads import SharedReads
from postroom.pipeline.submission import Submitter
from postroom.pipeline.suspension import suspension_refusal
from postroom.pipeline.throttle import AuthThrottle

log = logging.getLogger("postroom.doors")

AUTH_REQUIRED = Refusal(RefusalKind.AUTH_REQUIRED, "Authentication required")
THROTTLED = Refusal(
    RefusalKind.AUTH_THROTTLED,
    "Too many failed authentication attempts from your address; try again later",
)
REVOKED = Refusal(
    RefusalKind.AUTH_INVALID,
    "The credentials of this session are no longer valid; authenticate again",
)
TOUCH_INTERVAL = 60.0  # seconds between last_used updates of one credential
# A failed AUTH is answered this long after the attempt began, whatever made it fail (unknown
# user or wrong password): the database look-up of a name that exists costs more than one that
# does not, and the client must not be able to tell them apart by the time the answer takes.
FAILURE_DELAY = 0.1


@dataclass(slots=True)
class _Binding:
    username: str
    credential_id: str
    secret_digest: str
    submitter: Submitter
    generation: int | None  # the change counter when the credential was last read
    blocked_attempts: int = 0


@dataclass(frozen=True, slots=True)
class _IpState:
    """The IP credentials and the projects as read at one value of the change counter."""

    generation: int | None
    credentials: IpCredentials
    projects: Mapping[str, Project]


class SubmissionDoor:
    """The `SmtpDoor` of the submission listeners: authenticate, check the sender (AUTH or an
    IP credential), deliver into the credential's project."""

    checks_sender = True
    checks_recipient = True

    def __init__(
        self,
        platform: PlatformStore,
        pipeline: Acceptor,
        clock: Clock,
        throttle: AuthThrottle,
        metrics: Metrics,
        session_log: SessionLog | None = None,
        failure_delay: float = FAILURE_DELAY,
        directory: ProjectDirectory | None = None,
        routed: frozenset[str] = frozenset(),
    ) -> None:
        """`directory` tells live projects from capture ones for the recipient checks (without
        it every project counts as live); `routed` holds the domains with an explicit route
        (--routes), which a live project may send to even when their names look private."""
        self._directory = directory
        self._routed = routed
        self._session_log = session_log or SessionLog(metrics)
        self._platform = platform
        self._pipeline = pipeline
        self._clock = clock
        self.throttle = throttle
        self._metrics = metrics
        self._sessions: dict[str, _Binding] = {}
        self._ip = _IpState(None, IpCredentials(), {})
        self._failure_delay = failure_delay
        self._touched: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._auth_waiters: set[asyncio.Future[None]] = set()
        self._generations: SharedReads[None, int] = SharedReads(self._read_generations)

    def _read_generations(self, questions: Sequence[None]) -> list[int]:
        """Blocking: the change counter, for every MAIL that asked for it."""
        return [self._platform.generation()] * len(questions)

    # IP credentials ---------------------------------------------------------------------------

    async def refresh_ip_credentials(self) -> None:
        """Read the IP credentials again (at start and periodically)."""
        self._ip = await asyncio.to_thread(self._read_ip_state, self._ip)

    def _read_ip_state(self, known: _IpState | None) -> _IpState:
        """Blocking: `known` when the change counter has not moved since it was read, else
        the IP credentials and the projects as stored now."""
        generation = self._platform.generation()
        if known is not None and known.generation == generation:
            return known
        credentials = IpCredentials(self._platform.list_ip_credentials())
        projects = {project.id: project for project in self._platform.list_projects()}
        return _IpState(generation, credentials, projects)

    def ip_credential(self, host: str) -> IpCredential | None:
        """The IP credential covering a client address, if any (pipeline.identity rules)."""
        return self._ip.credentials.match(host)

    # SMTP hooks -------------------------------------------------------------------------------

    def check_sender(
        self, session: SessionInfo, address: str, params: Mapping[str, str]
    ) -> Refusal | Awaitable[Refusal | None] | None:
        """At MAIL FROM: an authenticated session, or a client covered by an IP credential.
        A session with neither is refused at once, from memory; otherwise its credential and
        project are read again from the store (on a worker thread) before the answer."""
        if session.auth_user is not None:
            binding = self._sessions.get(session.session_id)
            if binding is None or binding.username != session.auth_user:
                return AUTH_REQUIRED
            return self._recheck_binding(binding)
        if self.ip_credential(session.peer_host) is None:
            return AUTH_REQUIRED
        return self._recheck_ip(session.peer_host)

    async def _recheck_binding(self, binding: _Binding) -> Refusal | None:
        # The counter is read first: a change committed between the two reads moves it
        # again, and the next MAIL reads once more.
        generation = await self._generations.ask(None)
        self._saw(generation)
        if generation == binding.generation:  # nothing changed since the credential was read
            return await self._suspended(binding.submitter.project)
        credential, project = await asyncio.to_thread(self._read_credential, binding.username)
        if (
            credential is None
            or credential.id != binding.credential_id
            or credential.secret_digest != binding.secret_digest
        ):
            # Deleted (with its project, perhaps), or replaced by another of the same name.
            project_id = binding.submitter.project
            if credential is None and not await asyncio.to_thread(self._exists, project_id):
                return NO_PROJECT
            return REVOKED
        assert project is not None  # read with the credential
        self._observe(project)
        if credential.allowed_from != binding.submitter.allowed_from:
            binding.submitter = Submitter(
                credential.project_id, f"smtp:{credential.username}", credential.allowed_from
            )
        binding.generation = generation  # a refusal above leaves it: the next MAIL reads again
        return suspension_refusal(project)

    def _read_credential(self, username: str) -> tuple[SmtpCredential | None, Project | None]:
        """Blocking: the credential named `username` and its project, as stored now (one
        transaction); (None, None) when either is gone."""
        try:
            return self._platform.smtp_credential_with_project(username)
        except NotFound:
            return None, None

    def _exists(self, project_id: str) -> bool:
        try:
            self._platform.get_project(project_id)
        except NotFound:
            return False
        return True

    async def _recheck_ip(self, host: str) -> Refusal | None:
        generation = await self._generations.ask(None)
        self._saw(generation)
        known = self._ip  # perhaps read again by another session meanwhile
        state = known
        if generation != known.generation:  # read again (the counter first, once more)
            state = await asyncio.to_thread(self._read_ip_state, None)
            if state.generation is not None:
                self._saw(state.generation)
        if state is not known:
            self._ip = state
        ip = state.credentials.match(host)
        if ip is None:
            return AUTH_REQUIRED
        project = state.projects.get(ip.project_id)
        if project is None:
            return NO_PROJECT
        if state is not known:
            self._observe(project)
        return suspension_refusal(project)

    async def _suspended(self, project_id: str) -> Refusal | None:
        """The suspension refusal of the project as its snapshot holds it (dropped when the
        change counter moved: `_saw` ran first), None when it may send or without a
        directory (the pipeline refuses the message then)."""
        if self._directory is None:
            return None
        try:
            view = await self._directory.get(project_id)
        except Refusal as refusal:
            return refusal
        return suspension_refusal(view.project)

    def _observe(self, project: Project) -> None:
        if self._directory is not None:
            self._directory.observe(project)

    def _saw(self, generation: int) -> None:
        if self._directory is not None:
            self._directory.saw_generation(generation)

    def check_recipient(
        self, session: SessionInfo, mail_from: str, address: str, params: Mapping[str, str]
    ) -> Refusal | Awaitable[Refusal | None] | None:
        """Any recipient a project's mail may go to (the credential vouches for the client),
        except, for a live project, IP literals, bare local parts and private destination
        names (pipeline/destinations.py). Answered at once for ordinary addresses; the
        project's mode is looked up only for a recipient that would be refused."""
        refusal = destination_refusal(address, self._routed)
        if refusal is None:
            return None
        submitter = self.submitter(session)
        if submitter is None:
            return AUTH_REQUIRED
        return self._refuse_if_live(submitter.project, refusal)

    async def _refuse_if_live(self, project: str, refusal: Refusal) -> Refusal | None:
        if self._directory is None:
            return refusal
        view = await self._directory.get(project)
        return refusal if view.project.mode == "live" else None

    async def authenticate(
        self, mechanism: str, username: str, password: str, session: SessionInfo
    ) -> str | None:
        """Verify an SMTP credential; bind the session to its project. Raises THROTTLED while
        the client is throttled (the session answers 454, and 421 with a close when the same
        session tries again)."""
        host = session.peer_host
        # Reserved before checking, so parallel attempts cannot all pass a check of the count;
        # refused only for attempts still in flight, it waits for them (a connection pool's
        # correct logins are checked a few at a time, not refused).
        token = self.throttle.reserve(host)
        while token is None and self.throttle.waiting(host):
            await self._attempt_settled()
            token = self.throttle.reserve(host)
        if token is None:
            self._metrics.auth_failures.labels(session.door, "throttled").inc()
            raise THROTTLED
        loop = asyncio.get_running_loop()
        answer_at = loop.time() + self._failure_delay
        try:
            generation, credential = await asyncio.to_thread(
                self._check_password, username, password
            )
        except BaseException:
            self.throttle.succeeded(host, token)  # the store failed: nothing was judged
            self._wake_waiters()
            raise
        if credential is None:
            self.throttle.failed(host, token)  # the reserved attempt stays a failure
            self._wake_waiters()
            self._metrics.auth_failures.labels(session.door, "invalid").inc()
            log.info(
                "SMTP authentication failed",
                extra={"session": {"id": session.session_id, "peer": host, "user": username}},
            )
            await asyncio.sleep(max(0.0, answer_at - loop.time()))
            return None
        self.throttle.succeeded(host, token)
        self._wake_waiters()
        submitter = Submitter(
            credential.project_id, f"smtp:{credential.username}", credential.allowed_from
        )
        self._sessions[session.session_id] = _Binding(
            credential.username, credential.id, credential.secret_digest, submitter, generation
        )
        self._touch(credential)
        return credential.username

    async def _attempt_settled(self) -> None:
        """Until some AUTH attempt in flight is settled (whichever client's)."""
        waiter = asyncio.get_running_loop().create_future()
        self._auth_waiters.add(waiter)
        try:
            await waiter
        finally:
            self._auth_waiters.discard(waiter)

    def _wake_waiters(self) -> None:
        for waiter in self._auth_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _check_password(self, username: str, password: str) -> tuple[int, SmtpCredential | None]:
        """Blocking: the change counter, then the credential if the password is right."""
        generation = self._platform.generation()
        return generation, check_smtp_credential(self._platform, username, password)

    def _touch(self, credential: SmtpCredential) -> None:
        now = self._clock.monotonic()
        last = self._touched.get(credential.id)
        if last is not None and now - last < TOUCH_INTERVAL:
            return
        self._touched[credential.id] = now
        when = self._clock.now()

        async def touch() -> None:
            try:
                await asyncio.to_thread(self._platform.touch_smtp_credential, credential.id, when)
            except Exception:
                log.warning("recording the use of SMTP credential %s failed", credential.id)

        task = asyncio.ensure_future(touch())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def submitter(self, session: SessionInfo) -> Submitter | None:
        """The project binding of a session: its AUTH credential, else its IP credential."""
        if session.auth_user is not None:
            binding = self._sessions.get(session.session_id)
            if binding is not None and binding.username == session.auth_user:
                return binding.submitter
            return None
        credential = self.ip_credential(session.peer_host)
        if credential is None:
            return None
        return Submitter(credential.project_id, f"ip:{credential.network}")

    async def deliver(self, incoming: IncomingMessage) -> str:
        submitter = self.submitter(incoming.session)
        if submitter is None:
            raise AUTH_REQUIRED
        return await self._pipeline.accept(incoming, submitter.project, submitter=submitter)

    def session_ended(self, summary: dict[str, Any]) -> None:
        session_id = str(summary.get("session_id", ""))
        self._sessions.pop(session_id, None)
        self._session_log.session_ended(summary)

    def refused(self, door: DoorName, reason: str) -> None:
        self._session_log.refused(door, reason)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
