"""The address verification mail, and the AddressVerifier that adds identities and mails them.

The mail goes through the outbound queue like any live mail: it is stored (in the system
project, `core.platform.SYSTEM_PROJECT`, which no project, API key or page can read, since
the mail carries the token) with one delivery, and the delivery worker routes it by the relay,
routes or MX. Its sender is `--system-sender` (default `postroom@<hostname>`); it holds a link
to the confirmation page on `--public-url` and the same token as a code for the API.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid
from urllib.parse import quote

from postroom.config import Config, HostPort, system_sender
from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, NotFound, Refusal, RefusalKind
from postroom.core.ids import new_id
from postroom.core.platform import SYSTEM_PROJECT, AddressIdentity, Project
from postroom.core.ports import MessageStore
from postroom.core.types import Envelope, NewMessage
from postroom.pipeline.deliveries import deliveries_for
from postroom.platform import rules
from postroom.platform.address_proof import IssuedAddressToken
from postroom.platform.service import PlatformService

__all__ = [
    "CONFIRM_PATH",
    "MAIL_TAG",
    "AddressVerifier",
    "ProofMailLimiter",
    "ProofMailSettings",
    "confirm_link",
]

log = logging.getLogger("postroom.platform")

CONFIRM_PATH = "/confirm-address"
MAIL_TAG = "address-verification"


@dataclass(frozen=True, slots=True)
class ProofMailSettings:
    sender: str  # envelope sender and From
    public_url: str  # where people reach this server (links point there)
    hostname: str  # Message-ID domain

    @classmethod
    def from_config(cls, config: Config, http_port: int | None = None) -> ProofMailSettings:
        """Links go to --public-url; without one, to the HTTP listener (`http_port`: the
        port it is bound to, when the config says 0), by its address, or by --hostname when
        it listens on every address."""
        base = config.public_url.strip()
        if not base:
            host = config.http.host
            if host in ("", "0.0.0.0", "::", "[::]"):
                host = config.hostname
            base = f"http://{HostPort(host, http_port or config.http.port)}"
        return cls(system_sender(config), base.rstrip("/"), config.hostname)


def confirm_link(settings: ProofMailSettings, token: str) -> str:
    return f"{settings.public_url}{CONFIRM_PATH}?token={quote(token, safe='')}"


def verification_mail(
    identity: AddressIdentity,
    project: Project,
    token: str,
    settings: ProofMailSettings,
    now: datetime,
) -> bytes:
    """The mail asking the owner of `identity.address` to confirm (RFC 5322, CRLF)."""
    address = identity.address
    ascii_only = address.isascii() and settings.sender.isascii()
    message = EmailMessage(policy=SMTP if ascii_only else SMTPUTF8)
    local, _, domain = settings.sender.rpartition("@")
    message["From"] = Address("Postroom", local, domain)
    message["To"] = address
    message["Subject"] = f"Confirm that project {project.id} may send mail as {address}"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid("verify", domain=settings.hostname)
    message["Auto-Submitted"] = "auto-generated"
    expires = identity.token_expires
    until = expires.strftime("%Y-%m-%d %H:%M UTC") if expires is not None else "soon"
    api = f"/api/v2/projects/{project.id}/verified-addresses/{quote(address, safe='@')}/confirm"
    message.set_content(
        f"Project {project.id} ({project.name}) of the Postroom server at\n"
        f"{settings.public_url} asks to send mail as {address}.\n"
        "\n"
        "If that is you, open this link and press the button on the page:\n"
        "\n"
        f"  {confirm_link(settings, token)}\n"
        "\n"
        "Or give this code to the management API (POST "
        f'{api}, body {{"code": "..."}}):\n'
        "\n"
        f"  {token}\n"
        "\n"
        f"The link and the code work once, until {until}.\n"
        "\n"
        "If you did not expect this mail, ignore it: nothing is sent as you unless\n"
        "someone confirms.\n"
    )
    return message.as_bytes()


class ProofMailLimiter:
    """Limits on verification mails kept in this process, whatever the identity rows say: a
    project that deletes and adds an address again starts a fresh row (and its counters), and
    must not be able to mail someone without end. Per recipient address (every project
    together): one a minute, `per_address` a day; per project: `per_project` a day."""

    def __init__(
        self,
        clock: Clock,
        *,
        interval: float = 60.0,
        per_address: int = 5,
        per_project: int = 100,
        window: float = 86400.0,
    ) -> None:
        self._clock = clock
        self.interval = interval
        self.per_address = per_address
        self.per_project = per_project
        self.window = window
        self._sent: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._sent.setdefault(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        return times

    def reserve(self, project_id: str, address: str) -> None:
        """Count a mail to `address` for `project_id`, or raise the 429 Refusal (rate_limit,
        field `address`) saying how long to wait."""
        now = self._clock.monotonic()
        by_address = self._recent("a:" + address, now)
        by_project = self._recent("p:" + project_id, now)
        waits: list[float] = []
        if by_address and now - by_address[-1] < self.interval:
            waits.append(self.interval - (now - by_address[-1]))
        if len(by_address) >= self.per_address:
            waits.append(self.window - (now - by_address[0]))
        if len(by_project) >= self.per_project:
            waits.append(self.window - (now - by_project[0]))
        if waits:
            wait = max(waits)
            raise Refusal(
                RefusalKind.RATE_LIMIT,
                f"too many verification mails to {address} or from project {project_id} "
                f"lately: ask again in {max(1, math.ceil(wait))} s",
                field="address",
                retry_after=wait,
            )
        by_address.append(now)
        by_project.append(now)
        for key in [k for k, v in self._sent.items() if not v]:
            del self._sent[key]

    def release(self, project_id: str, address: str) -> None:
        """Give back the last reservation (nothing was mailed)."""
        for key in ("a:" + address, "p:" + project_id):
            times = self._sent.get(key)
            if times:
                times.pop()


class AddressVerifier:
    """Adds address identities (pending) and mails their tokens through the outbound queue;
    confirms them. The API, the admin pages and the CLI all go through this."""

    def __init__(
        self,
        service: PlatformService,
        store: MessageStore,
        clock: Clock,
        settings: ProofMailSettings,
        limiter: ProofMailLimiter | None = None,
    ) -> None:
        self.service = service
        self.store = store
        self.clock = clock
        self.settings = settings
        self.limiter = limiter or ProofMailLimiter(clock)

    async def add(self, project_id: str, address: str) -> AddressIdentity:
        """A new pending identity; its verification mail is queued before this returns. If
        queueing fails the identity stays pending (resend later) and the error propagates."""
        return await self._issue(project_id, address, self.service.add_address)

    async def resend(self, project_id: str, address: str) -> AddressIdentity:
        """A new token mailed to a pending identity (throttled; the old one stops working)."""
        return await self._issue(project_id, address, self.service.renew_address_token)

    async def _issue(
        self,
        project_id: str,
        address: str,
        issue: Callable[[str, str], IssuedAddressToken],
    ) -> AddressIdentity:
        normalised = rules.email_address(address)
        # What the request gets wrong (no project, a duplicate, verified already) is said
        # before the throttle, which counts only mails that would go.
        await asyncio.to_thread(self._precheck, project_id, normalised, issue)
        self.limiter.reserve(project_id, normalised)
        try:
            issued = await asyncio.to_thread(issue, project_id, normalised)
        except BaseException:
            self.limiter.release(project_id, normalised)
            raise
        await self._mail(issued)
        return issued.identity

    def _precheck(
        self, project_id: str, address: str, issue: Callable[[str, str], IssuedAddressToken]
    ) -> None:
        self.service.get_project(project_id)
        adding = issue == self.service.add_address
        try:
            existing = self.service.get_address(project_id, address)
        except NotFound:
            if adding:
                return
            raise
        if adding:
            raise InvalidInput(f"project {project_id!r} has {address} already", "address")
        if existing.verified:
            raise InvalidInput(
                f"{address} is verified already: there is nothing to confirm", "address"
            )

    async def _mail(self, issued: IssuedAddressToken) -> str:
        identity = issued.identity
        project = await asyncio.to_thread(self.service.get_project, identity.project_id)
        now = self.clock.now()
        raw = verification_mail(identity, project, issued.token, self.settings, now)
        params = {} if raw.isascii() else {"SMTPUTF8": "", "BODY": "8BITMIME"}
        envelope = Envelope(self.settings.sender, (identity.address,), params)
        message = NewMessage(
            id=new_id(now),
            project=SYSTEM_PROJECT,
            created=now,
            raw=raw,
            envelope=envelope,
            summary=None,
            tags=(MAIL_TAG,),
            status="queued",
            deliveries=deliveries_for(envelope),
        )
        stored = await self.store.add(message)
        log.info(
            "address verification mail queued",
            extra={"path": f"{identity.project_id}/{identity.address}"},
        )
        return stored.id
