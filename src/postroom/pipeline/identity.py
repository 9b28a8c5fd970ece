"""Who may send, and as whom: the sending rules, each defined once.

Every caller uses these: the submission doors, the HTTP sending door, and the tests of the
management side (which creates the credentials, identities and keys these rules read).

* `check_smtp_credential`: the SMTP credential that AUTH values name, or None. The same work
  whether or not the user name exists (an unknown user is compared against a dummy digest).
* `IpCredentials`: the IP credentials ready for matching a client address; the most specific
  network wins, ties go to the oldest credential (then the smallest id).
* `sender_allowed` / `unverified_identities`: may a project send as an address: the address is
  a verified address of the project or at one of its verified domains (`ProjectView.verified`),
  and within the credential's `allowed_from` restriction when it has one.

Which DKIM keys sign a domain's mail is `signing_keys` in pipeline/signing.py.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable

from postroom.core.errors import NotFound
from postroom.core.platform import IpCredential, PlatformStore, SmtpCredential
from postroom.core.secrets import secret_digest, verify_secret
from postroom.pipeline.headers import address_domain
from postroom.pipeline.projects import ProjectView, ascii_domain

log = logging.getLogger("postroom.pipeline")

_DUMMY_DIGEST = secret_digest("postroom-no-such-credential")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def check_smtp_credential(
    platform: PlatformStore, username: str, password: str
) -> SmtpCredential | None:
    """The credential `username` names when `password` is its secret; None otherwise (unknown
    user and wrong password alike, after the same digest comparison). Blocking: call it on a
    worker thread from async code. A store failure propagates."""
    credential: SmtpCredential | None
    try:
        credential = platform.smtp_credential_by_username(username)
    except NotFound:
        credential = None
    digest = credential.secret_digest if credential is not None else _DUMMY_DIGEST
    if verify_secret(password, digest) and credential is not None:
        return credential
    return None


MAX_MATCHED = 4096  # client addresses whose IP credential (or none) IpCredentials remembers


class IpCredentials:
    """IP credentials compiled for matching client addresses (immutable; build a new one to
    refresh). Credentials whose network does not parse are logged and left out."""

    def __init__(self, credentials: Iterable[IpCredential] = ()) -> None:
        networks: list[tuple[Network, IpCredential]] = []
        for credential in credentials:
            try:
                network = ipaddress.ip_network(credential.network, strict=False)
            except ValueError:
                log.error(
                    "IP credential %s has a bad network %r", credential.id, credential.network
                )
                continue
            networks.append((network, credential))
        # Most specific network first; ties: the oldest credential, then the smallest id.
        networks.sort(key=lambda item: (-item[0].prefixlen, item[1].created, item[1].id))
        self._networks = networks
        # The answers by client address: a session asks several times (MAIL, the message),
        # and parsing the address cost more than the rest of the match. This object is
        # rebuilt whenever the credentials change, so the answers never outlive them.
        self._matched: dict[str, IpCredential | None] = {}

    def __len__(self) -> int:
        return len(self._networks)

    def match(self, host: str) -> IpCredential | None:
        """The credential whose network holds `host` (an IPv4 or IPv6 address, IPv4-mapped
        IPv6 counting as IPv4; a zone index is ignored), or None."""
        if not self._networks:
            return None
        try:
            return self._matched[host]
        except KeyError:
            pass
        found = self._match(host)
        if len(self._matched) >= MAX_MATCHED:
            self._matched.clear()
        self._matched[host] = found
        return found

    def _match(self, host: str) -> IpCredential | None:
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


def _within(address: str, allowed_from: tuple[str, ...]) -> bool:
    """Is `address` among the credential's allowed senders (addresses, or domains)?"""
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


def sender_allowed(view: ProjectView, address: str, allowed_from: tuple[str, ...] = ()) -> bool:
    """May the project of `view` send as `address`? It must be a verified identity of the
    project and, when the credential restricts its senders (`allowed_from`), among them."""
    return view.verified(address) and _within(address, allowed_from)


def unverified_identities(
    view: ProjectView, identities: list[str], allowed_from: tuple[str, ...]
) -> list[str]:
    """The identities (in order, without duplicates) the project may not send as."""
    failed: list[str] = []
    for identity in identities:
        if identity in failed:
            continue
        if not sender_allowed(view, identity, allowed_from):
            failed.append(identity)
    return failed
