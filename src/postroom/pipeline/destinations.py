"""Which recipients a live project may send to: no probes of internal networks.

A live project's mail leaves the machine through the delivery worker. Some recipients would
make the MTA connect to hosts it should never reach on a client's word, whatever DNS says:

* an address literal (`user@[192.0.2.1]`, `user@[IPv6:...]`): the client picks the host;
* a bare local part (`postmaster`, no domain): local to which system?
* a loopback or private destination name: `localhost` and `*.localhost` (RFC 6761), `*.local`
  (mDNS, RFC 6762), `*.internal`, `*.home.arpa` (RFC 8375), and single-label names (resolved
  through the host's search domains).

Such a recipient is refused (`destination_not_allowed`; 553 5.1.2 over SMTP) unless the
operator routes its domain explicitly (`--routes DOMAIN=URL`, exact domain): then the operator,
not the client, chose where it goes. The MX routing (delivery/routing.py) still refuses
public-looking names whose DNS points at non-public addresses (5.4.4). Capture projects deliver
nothing and take any recipient.
"""

from __future__ import annotations

from collections.abc import Iterable

from postroom.core.errors import Refusal, RefusalKind
from postroom.pipeline.projects import ascii_domain

PRIVATE_NAMES = ("localhost",)
PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


def _domain(address: str) -> str | None:
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return None
    return domain


def destination_refusal(address: str, routed: Iterable[str] = ()) -> Refusal | None:
    """Why a live project may not send to `address` (a Refusal), or None when it may.
    `routed` holds the domains with an explicit route (lower case, no trailing dot)."""
    domain = _domain(address)
    if domain is None:
        return Refusal(
            RefusalKind.DESTINATION_NOT_ALLOWED,
            f"Recipient <{address}> has no domain: a live project sends only to "
            "user@domain addresses",
            field="To",
        )
    if domain.startswith("["):
        return Refusal(
            RefusalKind.DESTINATION_NOT_ALLOWED,
            f"Recipient <{address}> names an IP address: a live project sends only to domain names",
            field="To",
        )
    # Judge the name the delivery worker will look up: its A-labels (a U-label or full-width
    # spelling of "localhost" or "x.internal" normalises to them).
    name = ascii_domain(domain.rstrip(".")) or domain.lower().rstrip(".")
    if name in routed:
        return None
    if name.rpartition(".")[2].isdigit():  # 127.0.0.1 written as a name: no TLD is numeric
        return Refusal(
            RefusalKind.DESTINATION_NOT_ALLOWED,
            f"Recipient <{address}> names an IP address: a live project sends only to domain names",
            field="To",
        )
    if name in PRIVATE_NAMES or name.endswith(PRIVATE_SUFFIXES) or "." not in name:
        return Refusal(
            RefusalKind.DESTINATION_NOT_ALLOWED,
            f"Recipient <{address}> is on a local or private network ({name}): a live "
            "project cannot send there unless the administrator routes that domain",
            field="To",
        )
    return None


def first_refusal(addresses: Iterable[str], routed: Iterable[str] = ()) -> Refusal | None:
    """The refusal of the first recipient a live project may not send to, or None."""
    domains = frozenset(routed)
    for address in addresses:
        refusal = destination_refusal(address, domains)
        if refusal is not None:
            return refusal
    return None
