"""Sending identities as the SES-compatible API shows them, on the platform's own identity
functions (platform/service.py: domains with DNS verification and DKIM keys, verified
addresses), never a second list.

* A domain identity is a project's sending domain: creating one adds the domain with its DKIM
  key (unverified until its DNS records are checked); its DKIM "tokens" are our selectors.
* An address identity is verified when it is one of the project's verified addresses or at a
  verified domain of the project. Creating one (CreateEmailIdentity, VerifyEmailIdentity)
  starts the proof SES also asks for: the address becomes pending and the verification mail
  goes to it (platform/address_mail.py's AddressVerifier, as /api/v2 and the admin pages do);
  asking again for a pending address mails a new token (throttled: then nothing is sent). Only
  the link or code in that mail verifies it. Without a verifier (no outbound mail), creating
  an unverified address answers "not verified" and stores nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from postroom.core.errors import InvalidInput, NotFound, Refusal
from postroom.core.platform import AddressIdentity
from postroom.platform import rules
from postroom.platform.address_mail import AddressVerifier
from postroom.platform.service import PlatformService


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    kind: str  # "DOMAIN" or "EMAIL_ADDRESS"
    verified: bool
    token: str = ""  # a domain's verification token
    selectors: tuple[str, ...] = ()  # a domain's DKIM selectors


class Identities:
    def __init__(self, service: PlatformService, verifier: AddressVerifier | None = None) -> None:
        self.service = service
        self.verifier = verifier

    def _domain(self, project: str, name: str) -> Identity:
        domain = self.service.get_domain(project, name)
        selectors = tuple(k.selector for k in domain.dkim_keys if k.status != "retired")
        return Identity(
            domain.name, "DOMAIN", domain.verified, domain.verification_token, selectors
        )

    def _address(self, project: str, address: str) -> AddressIdentity | None:
        return next((a for a in self.service.list_addresses(project) if a.address == address), None)

    def _address_verified(self, project: str, address: str) -> bool:
        found = self._address(project, address)
        if found is not None and found.verified:
            return True
        domain = address.rpartition("@")[2]
        return any(d.verified and d.name == domain for d in self.service.list_domains(project))

    async def create(self, project: str, name: object) -> tuple[Identity, bool]:
        """The identity and whether it already existed (domains) or is verified (addresses);
        an unverified address gets its verification mail (see the module)."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("EmailIdentity is required", "EmailIdentity")
        if "@" in name:
            address = rules.email_address(name)
            if await asyncio.to_thread(self._address_verified, project, address):
                return Identity(address, "EMAIL_ADDRESS", True), True
            if self.verifier is not None:
                pending = await asyncio.to_thread(self._address, project, address)
                try:
                    if pending is None:
                        await self.verifier.add(project, address)
                    else:
                        await self.verifier.resend(project, address)
                except Refusal:
                    pass  # mailed too recently: the earlier mail's link still works
            return Identity(address, "EMAIL_ADDRESS", False), False
        return await asyncio.to_thread(self._create_domain, project, name)

    def _create_domain(self, project: str, name: str) -> tuple[Identity, bool]:
        try:
            return self._domain(project, name), True
        except NotFound:
            pass
        self.service.add_domain(project, name)
        return self._domain(project, name), False

    def get(self, project: str, name: str) -> Identity:
        if "@" in name:
            address = rules.email_address(name)
            if self._address_verified(project, address):
                return Identity(address, "EMAIL_ADDRESS", True)
            if self._address(project, address) is not None:  # pending: mailed, not confirmed
                return Identity(address, "EMAIL_ADDRESS", False)
            raise NotFound(f"Email identity {address} does not exist.")
        try:
            return self._domain(project, name)
        except NotFound:
            raise NotFound(f"Email identity {name} does not exist.") from None

    def list(self, project: str) -> list[Identity]:
        domains = [
            Identity(d.name, "DOMAIN", d.verified, d.verification_token)
            for d in self.service.list_domains(project)
        ]
        addresses = [
            Identity(a.address, "EMAIL_ADDRESS", a.verified)
            for a in self.service.list_addresses(project)
        ]
        return sorted(domains + addresses, key=lambda i: (i.kind, i.name))

    def delete(self, project: str, name: str) -> None:
        if "@" in name:
            address = rules.email_address(name)
            if self._address(project, address) is None:
                raise NotFound(f"Email identity {address} does not exist.")
            self.service.delete_address(project, address)
            return
        try:
            self.service.delete_domain(project, name)
        except NotFound:
            raise NotFound(f"Email identity {name} does not exist.") from None
