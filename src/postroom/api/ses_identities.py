"""Sending identities as the SES-compatible API shows them, on the platform's own identity
functions (platform/service.py: domains with DNS verification and DKIM keys, verified
addresses), never a second list.

* A domain identity is a project's sending domain: creating one adds the domain with its DKIM
  key (unverified until its DNS records are checked); its DKIM "tokens" are our selectors.
* An address identity is verified when it is one of the project's verified addresses or at a
  verified domain of the project. Creating one does not verify it: an address needs proof
  (verification by mail is being built separately; until then an admin adds verified
  addresses through /api/v2). So creating an unverified address answers "not verified" and
  stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from postroom.core.errors import InvalidInput, NotFound
from postroom.platform import rules
from postroom.platform.service import PlatformService


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    kind: str  # "DOMAIN" or "EMAIL_ADDRESS"
    verified: bool
    token: str = ""  # a domain's verification token
    selectors: tuple[str, ...] = ()  # a domain's DKIM selectors


class Identities:
    def __init__(self, service: PlatformService) -> None:
        self.service = service

    def _domain(self, project: str, name: str) -> Identity:
        domain = self.service.get_domain(project, name)
        selectors = tuple(k.selector for k in domain.dkim_keys if k.status != "retired")
        return Identity(
            domain.name, "DOMAIN", domain.verified, domain.verification_token, selectors
        )

    def _address_verified(self, project: str, address: str) -> bool:
        if any(a.address == address for a in self.service.list_verified_addresses(project)):
            return True
        domain = address.rpartition("@")[2]
        return any(d.verified and d.name == domain for d in self.service.list_domains(project))

    def create(self, project: str, name: str) -> tuple[Identity, bool]:
        """The identity and whether it already existed (domains) or was verified (addresses)."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput("EmailIdentity is required", "EmailIdentity")
        if "@" in name:
            address = rules.email_address(name)
            verified = self._address_verified(project, address)
            return Identity(address, "EMAIL_ADDRESS", verified), verified
        try:
            return self._domain(project, name), True
        except NotFound:
            pass
        self.service.add_domain(project, name)
        return self._domain(project, name), False

    def get(self, project: str, name: str) -> Identity:
        if "@" in name:
            address = rules.email_address(name)
            if not self._address_verified(project, address):
                raise NotFound(f"Email identity {address} does not exist.")
            return Identity(address, "EMAIL_ADDRESS", True)
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
            Identity(a.address, "EMAIL_ADDRESS", True)
            for a in self.service.list_verified_addresses(project)
        ]
        return sorted(domains + addresses, key=lambda i: (i.kind, i.name))

    def delete(self, project: str, name: str) -> None:
        if "@" in name:
            address = rules.email_address(name)
            if address not in {a.address for a in self.service.list_verified_addresses(project)}:
                raise NotFound(f"Email identity {address} does not exist.")
            self.service.delete_verified_address(project, address)
            return
        try:
            self.service.delete_domain(project, name)
        except NotFound:
            raise NotFound(f"Email identity {name} does not exist.") from None
