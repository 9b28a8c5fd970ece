"""Proof that a project may send as an address: the token mailed to it, and its rules.

SES's VerifyEmailIdentity flow: adding an address makes it *pending* and issues a token that
Postroom mails to that address (platform/address_mail.py, through the outbound queue like any
other mail). Whoever reads the mailbox confirms with the link (the public page
`/confirm-address`) or gives the code to the API; only then is the identity *verified*, and
only then may the project send as it. A pending identity allows nothing.

The token (`pva_` and 256 random bits) is never stored: only its SHA-256, next to the
identity it was issued for (one project, one address), so it is bound to both and a leaked
database does not confirm anything. It expires (`token_lifetime`, 24 h by default), it is
single-use (the confirmation is one conditional UPDATE: the identity must still be pending
with this very token), and a newer mail replaces it. Mails to one address are throttled:
at most one per `resend_interval` and `mails_per_day` in 24 hours.

Each project proves its own identities: a project adding an address another project has
verified gets a pending identity and a token of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, NotFound, Refusal, RefusalKind
from postroom.core.platform import AddressIdentity, PlatformStore
from postroom.core.secrets import new_secret, secret_digest
from postroom.platform import rules

__all__ = [
    "TOKEN_PREFIX",
    "AddressProofSettings",
    "AddressProofs",
    "IssuedAddressToken",
]

TOKEN_PREFIX = "pva"
_TOKEN = re.compile(r"pva_[A-Za-z0-9_-]{20,100}")
WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class AddressProofSettings:
    token_lifetime: timedelta = timedelta(hours=24)
    resend_interval: timedelta = timedelta(seconds=60)
    mails_per_day: int = 5


@dataclass(frozen=True, slots=True)
class IssuedAddressToken:
    """A pending identity and the token to mail to it (shown nowhere else, never stored)."""

    identity: AddressIdentity
    token: str = field(repr=False)


class AddressProofs:
    """The rules of address identities, on the PlatformStore (synchronous: call from threads)."""

    def __init__(
        self,
        store: PlatformStore,
        clock: Clock,
        settings: AddressProofSettings,
        max_identities: int | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.max_identities = max_identities  # domains and addresses per project (None: any)

    def _issue(self, identity: AddressIdentity, now: datetime) -> IssuedAddressToken:
        token = new_secret(TOKEN_PREFIX)
        window_start = identity.window_start
        count = identity.mails_in_window
        if window_start is None or now - window_start >= WINDOW:
            window_start, count = now, 0
        issued = replace(
            identity,
            token_digest=secret_digest(token),
            token_expires=now + self.settings.token_lifetime,
            last_mail=now,
            mails_in_window=count + 1,
            window_start=window_start,
        )
        return IssuedAddressToken(issued, token)

    def add(self, project_id: str, address: str) -> IssuedAddressToken:
        """A new pending identity of the project with its first token. InvalidInput when the
        project has the address already (pending or verified); LimitExceeded when it has
        `max_identities` domains and addresses."""
        self.store.get_project(project_id)
        now = self.clock.now()
        pending = AddressIdentity(project_id, rules.email_address(address), now, "pending")
        issued = self._issue(pending, now)
        self.store.add_address_identity(issued.identity, limit=self.max_identities)
        return issued

    def renew(self, project_id: str, address: str) -> IssuedAddressToken:
        """A new token for a pending identity (the previous one stops working). Refused with
        429 (rate_limit, field `address`) within `resend_interval` of the last mail or past
        `mails_per_day` mails in 24 hours; InvalidInput when the address is verified."""
        identity = self.store.get_address_identity(project_id, rules.email_address(address))
        if identity.verified:
            raise InvalidInput(
                f"{identity.address} is verified already: there is nothing to confirm",
                "address",
            )
        now = self.clock.now()
        wait = self._throttled(identity, now)
        if wait is not None:
            raise Refusal(
                RefusalKind.RATE_LIMIT,
                f"a verification mail was sent to {identity.address} recently: ask again in "
                f"{_seconds(wait)}",
                field="address",
                retry_after=wait.total_seconds(),
            )
        issued = self._issue(identity, now)
        self.store.save_address_identity(issued.identity)
        return issued

    def _throttled(self, identity: AddressIdentity, now: datetime) -> timedelta | None:
        """How long to wait before another mail may go to the address (None: it may now)."""
        settings = self.settings
        waits: list[timedelta] = []
        if identity.last_mail is not None:
            since = now - identity.last_mail
            if timedelta(0) <= since < settings.resend_interval:
                waits.append(settings.resend_interval - since)
        start = identity.window_start
        if (
            start is not None
            and timedelta(0) <= now - start < WINDOW
            and identity.mails_in_window >= settings.mails_per_day
        ):
            waits.append(start + WINDOW - now)
        return max(waits) if waits else None

    def lookup(self, token: object, field_name: str = "token") -> AddressIdentity:
        """The pending identity a valid token confirms; InvalidInput naming `field_name` when
        the token is malformed, unknown (forged, or replaced by a newer mail), used already or
        expired. Changes nothing (the confirmation page's GET)."""
        identity, _digest = self._check(token, field_name)
        return identity

    def _check(self, token: object, field_name: str) -> tuple[AddressIdentity, str]:
        if token is None or token == "":
            raise InvalidInput(f"{field_name} is required", field_name)
        if not isinstance(token, str):
            raise InvalidInput(f"{field_name} must be a string", field_name)
        text = token.strip()
        if not _TOKEN.fullmatch(text):
            raise InvalidInput(
                f"{field_name} is malformed: a verification code looks like pva_ followed by "
                "43 letters, digits, - and _",
                field_name,
            )
        digest = secret_digest(text)
        try:
            identity = self.store.address_identity_by_token(digest)
        except NotFound:
            raise InvalidInput(
                f"unknown {field_name}: it is mistyped, or a newer verification mail "
                "replaced it (use the most recent one)",
                field_name,
            ) from None
        if identity.verified:
            raise InvalidInput(
                f"this {field_name} was used already: {identity.address} is verified",
                field_name,
            )
        expires = identity.token_expires
        if expires is None or self.clock.now() >= expires:
            when = expires.strftime("%Y-%m-%d %H:%M UTC") if expires else "an unknown time"
            raise InvalidInput(
                f"this {field_name} expired at {when}: ask for a new verification mail",
                field_name,
            )
        return identity, digest

    def confirm(
        self,
        token: object,
        field_name: str = "token",
        *,
        project_id: str | None = None,
        address: str | None = None,
    ) -> AddressIdentity:
        """Verify the identity the token was mailed for, once. With `project_id` and
        `address` (the API's code endpoint) the token must have been issued for exactly
        that identity."""
        identity, digest = self._check(token, field_name)
        if project_id is not None and address is not None:
            wanted = rules.email_address(address)
            if (identity.project_id, identity.address) != (project_id, wanted):
                raise InvalidInput(
                    f"this {field_name} was not issued for {wanted} of project {project_id}",
                    field_name,
                )
        now = self.clock.now()
        if not self.store.confirm_address_identity(
            identity.project_id, identity.address, digest, now
        ):
            raise InvalidInput(
                f"this {field_name} was used already or replaced meanwhile", field_name
            )
        return replace(identity, status="verified", verified_at=now)


def _seconds(wait: timedelta) -> str:
    seconds = max(1, int(wait.total_seconds() + 0.999))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
