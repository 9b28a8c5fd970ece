"""Submission (RFC 6409): who may submit, and the checks and fix-ups of a submitted message.

Two parts:

* `SubmissionSteps` runs inside the acceptance pipeline for every submitted message (SMTP
  submission doors now, the sending API later): the From header, the verified identities, line
  lengths, quotas, header fix-ups and the DKIM signature. Nothing is stored before every check
  has passed.
* `SubmissionDoor` is what the SMTP submission listeners call: AUTH PLAIN/LOGIN against SMTP
  credentials (with throttling of repeated failures per client), IP credentials for clients
  that submit without AUTH, and the binding of each session to its credential's project.

Replies (code, enhanced code, text):

    530 5.7.0 Authentication required                     MAIL without AUTH or IP credential
    535 5.7.8 Authentication credentials invalid          wrong user name or password
    454 4.7.0 Too many failed authentication attempts...  AUTH while the client is throttled
    421 4.7.0 ... closing connection                      AUTH again in that session
    550 5.6.0 <sentence>                                  no/several/unparseable From, bad
                                                          Sender, unfoldable long header
                                                          line, body line over 998 octets
    554 5.7.1 Message rejected: Email address is not verified. The following identities
              failed the check: <identities>              unverified or not allowed sender
    454 4.7.0 Throttling failure: Daily message quota exceeded
    454 4.7.0 Throttling failure: Maximum sending rate exceeded
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from postroom.core.clock import Clock
from postroom.core.errors import NotFound, Rejected
from postroom.core.platform import DEFAULT_PROJECT, IpCredential, PlatformStore, SmtpCredential
from postroom.core.secrets import secret_digest, verify_secret
from postroom.core.types import IncomingMessage, SessionInfo
from postroom.metrics import Metrics
from postroom.pipeline.headers import (
    address_domain,
    fix_up,
    read_authors,
    split_message,
)
from postroom.pipeline.projects import ProjectDirectory, ProjectView, ascii_domain
from postroom.pipeline.quota import QuotaTracker, Reservation
from postroom.pipeline.signing import SignerCache, sign
from postroom.pipeline.throttle import AuthThrottle

log = logging.getLogger("postroom.pipeline")

AUTH_REQUIRED = Rejected(530, "5.7.0", "Authentication required")
UNVERIFIED = "Message rejected: Email address is not verified. "
UNVERIFIED += "The following identities failed the check: "
THROTTLED = Rejected(
    454, "4.7.0", "Too many failed authentication attempts from your address; try again later"
)
_DUMMY_DIGEST = secret_digest("postroom-no-such-credential")
TOUCH_INTERVAL = 60.0  # seconds between last_used updates of one credential


@dataclass(frozen=True, slots=True)
class Submitter:
    """Who submits a message: the project it goes to and the credential that vouched for it.

    `principal` names the credential for logs and records ("smtp:<user>", "ip:<network>",
    "api:<key id>"); `allowed_from` restricts the sender identities (domains or addresses;
    empty = any verified identity of the project)."""

    project: str
    principal: str
    allowed_from: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A submitted message that passed every check: the bytes to store and how."""

    data: bytes
    status: str  # "queued" (live project) or "captured"
    reservation: Reservation


def _allowed(address: str, allowed_from: tuple[str, ...]) -> bool:
    if not allowed_from:
        return True
    lowered = address.lower()
    domain = ascii_domain(address_domain(lowered))
    for entry in allowed_from:
        item = entry.strip().lower()
        if "@" in item:
            if item == lowered:
                return True
        elif domain is not None and ascii_domain(item) == domain:
            return True
    return False


def unverified_identities(
    view: ProjectView, identities: list[str], allowed_from: tuple[str, ...]
) -> list[str]:
    """The identities (in order, without duplicates) that are not verified for the project or
    not within `allowed_from`."""
    failed: list[str] = []
    for identity in identities:
        if identity in failed:
            continue
        if not (view.verified(identity) and _allowed(identity, allowed_from)):
            failed.append(identity)
    return failed


class SubmissionSteps:
    """Checks, quota, fix-ups and DKIM for submitted messages (used by AcceptancePipeline)."""

    def __init__(
        self,
        directory: ProjectDirectory,
        quota: QuotaTracker,
        signers: SignerCache,
        hostname: str,
    ) -> None:
        self.directory = directory
        self.quota = quota
        self.signers = signers
        self._hostname = hostname

    async def prepare(
        self, incoming: IncomingMessage, submitter: Submitter, message_id: str, now: datetime
    ) -> Prepared:
        """Check the message and return it fixed up (and signed for a live project), with its
        quota reservation. Raises Rejected with the reply for the client."""
        view = await self.directory.get(submitter.project)
        parsed = split_message(incoming.data)
        authors = read_authors(parsed)
        identities = list(authors.from_)
        if authors.sender is not None:
            identities.append(authors.sender)
        if incoming.envelope.mail_from:
            identities.append(incoming.envelope.mail_from)
        failed = unverified_identities(view, identities, submitter.allowed_from)
        if failed:
            raise Rejected(554, "5.7.1", UNVERIFIED + ", ".join(failed))
        from_domain = ascii_domain(address_domain(authors.from_[0])) or self._hostname
        binary = incoming.envelope.mail_params.get("BODY") == "BINARYMIME"
        data = fix_up(parsed, message_id=message_id, id_domain=from_domain, now=now, binary=binary)
        project = view.project
        recipients = len(dict.fromkeys(incoming.envelope.recipients))
        reservation = await self.quota.reserve(project, recipients)
        live = project.mode == "live"
        domain = view.domains.get(from_domain) if live else None
        if domain is not None:
            signers = self.signers.signers_for(domain)
            try:
                if any(signer.algorithm == "rsa-sha256" for signer in signers):
                    # An RSA signature takes about half a millisecond with the GIL released:
                    # on a worker thread the event loop serves other sessions meanwhile.
                    signatures = await asyncio.to_thread(sign, data, signers)
                else:
                    signatures = sign(data, signers)
                data = signatures + data
            except BaseException:
                self.quota.release(reservation)
                raise
        return Prepared(data, "queued" if live else "captured", reservation)


class Acceptor(Protocol):
    """The acceptance pipeline, as the door sees it."""

    async def accept(
        self,
        incoming: IncomingMessage,
        project: str = DEFAULT_PROJECT,
        *,
        submitter: Submitter | None = None,
    ) -> str: ...


@dataclass(slots=True)
class _Binding:
    username: str
    submitter: Submitter
    blocked_attempts: int = 0


class SubmissionDoor:
    """What the submission listeners call: authenticate, check_sender, deliver."""

    def __init__(
        self,
        platform: PlatformStore,
        pipeline: Acceptor,
        clock: Clock,
        throttle: AuthThrottle,
        metrics: Metrics,
        hostname: str,
    ) -> None:
        self._platform = platform
        self._pipeline = pipeline
        self._clock = clock
        self.throttle = throttle
        self._metrics = metrics
        self._hostname = hostname
        self._sessions: dict[str, _Binding] = {}
        self._blocked: dict[str, int] = {}  # session id -> AUTH attempts refused while throttled
        self._networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, IpCredential]]
        self._networks = []
        self._touched: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # IP credentials ---------------------------------------------------------------------------

    async def refresh_ip_credentials(self) -> None:
        """Read the IP credentials again (at start and periodically)."""
        credentials = await asyncio.to_thread(self._platform.list_ip_credentials)
        networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, IpCredential]] = []
        for credential in credentials:
            try:
                network = ipaddress.ip_network(credential.network, strict=False)
            except ValueError:
                log.error(
                    "IP credential %s has a bad network %r", credential.id, credential.network
                )
                continue
            networks.append((network, credential))
        # Most specific network first; ties: the oldest credential.
        networks.sort(key=lambda item: (-item[0].prefixlen, item[1].created))
        self._networks = networks

    def ip_credential(self, host: str) -> IpCredential | None:
        """The IP credential whose network holds `host` (the most specific one), if any."""
        if not self._networks:
            return None
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for network, credential in self._networks:
            if address.version == network.version and address in network:
                return credential
        return None

    # SMTP hooks -------------------------------------------------------------------------------

    def check_sender(self, peer: str, auth_user: str | None) -> Rejected | None:
        """At MAIL FROM: an authenticated session, or a client covered by an IP credential."""
        if auth_user is not None or self.ip_credential(peer) is not None:
            return None
        return AUTH_REQUIRED

    async def authenticate(
        self, mechanism: str, username: str, password: str, session: SessionInfo
    ) -> str | None:
        """Verify an SMTP credential; bind the session to its project. Raises Rejected while
        the client is throttled (454 once per session, then 421 and close)."""
        host = session.peer_host
        if self.throttle.blocked(host):
            count = self._blocked.get(session.session_id, 0) + 1
            self._blocked[session.session_id] = count
            self._metrics.auth_failures.labels(session.door, "throttled").inc()
            if count == 1:
                raise THROTTLED
            raise Rejected(
                421,
                "4.7.0",
                f"{self._hostname} Too many failed authentication attempts, closing connection",
            )
        credential: SmtpCredential | None
        try:
            credential = await asyncio.to_thread(
                self._platform.smtp_credential_by_username, username
            )
        except NotFound:
            credential = None
        digest = credential.secret_digest if credential is not None else _DUMMY_DIGEST
        if not verify_secret(password, digest) or credential is None:
            self.throttle.failure(host)
            self._metrics.auth_failures.labels(session.door, "invalid").inc()
            log.info(
                "SMTP authentication failed",
                extra={"session": {"id": session.session_id, "peer": host, "user": username}},
            )
            return None
        submitter = Submitter(
            credential.project_id, f"smtp:{credential.username}", credential.allowed_from
        )
        self._sessions[session.session_id] = _Binding(credential.username, submitter)
        self._touch(credential)
        return credential.username

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

    def session_ended(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._blocked.pop(session_id, None)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
