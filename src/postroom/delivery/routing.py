"""Where mail for a domain goes: MX routing (RFC 5321 §5.1, RFC 7505) through the injected
resolver, producing an ordered list of hosts with their addresses.

* MX records are tried in preference order; hosts of equal preference in random order (the
  random source is injected, so tests are repeatable).
* No MX record: the domain itself is the one host (the "implicit MX"), if it has addresses.
* A null MX (a single MX of "." , RFC 7505): the domain accepts no mail — permanent 5.1.10.
* No MX and no address: permanent 5.1.2. MX hosts none of which has an address: temporary
  4.4.3 (a half-published change; retrying is cheap, bouncing is not).
* A DNS failure (timeout, SERVFAIL): temporary 4.4.3.
* Addresses that are not globally reachable (loopback, private, link-local, multicast,
  unspecified, reserved) are dropped unless the caller allows them: a public domain pointing
  its MX at 127.0.0.1 or 10.0.0.1 must not turn the MTA into a probe of the internal network.
  Only those addresses left: permanent 5.4.4.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from postroom.core.addresses import is_public_address
from postroom.core.errors import PostroomError
from postroom.dns.resolver import DnsError, Resolver

SMTP_PORT = 25
MAX_MX_HOSTS = 10  # hosts tried per domain at most (Postfix's smtp_mx_address_limit spirit)


class RoutingError(PostroomError):
    """No route to a domain: `enhanced` status (RFC 3463), permanent or temporary."""

    def __init__(self, enhanced: str, text: str) -> None:
        super().__init__(f"{enhanced} {text}")
        self.enhanced = enhanced
        self.text = text

    @property
    def temporary(self) -> bool:
        return self.enhanced.startswith("4.")


@dataclass(frozen=True, slots=True)
class MailHost:
    """One host to try: its name (for TLS checks and records), preference and addresses."""

    name: str
    preference: int
    addresses: tuple[str, ...]
    port: int = SMTP_PORT


@dataclass(frozen=True, slots=True)
class Route:
    domain: str
    hosts: tuple[MailHost, ...]
    implicit: bool = False  # no MX: the domain's own addresses


async def _addresses(resolver: Resolver, name: str) -> list[str]:
    return [*await resolver.a(name), *await resolver.aaaa(name)]


def _ordered(records: list[tuple[int, str]], rng: random.Random) -> list[tuple[int, str]]:
    """Preference order; equal preferences shuffled; each host once."""
    by_preference: dict[int, list[str]] = {}
    for preference, host in records:
        hosts = by_preference.setdefault(preference, [])
        if host not in hosts:
            hosts.append(host)
    ordered: list[tuple[int, str]] = []
    for preference in sorted(by_preference):
        hosts = by_preference[preference]
        rng.shuffle(hosts)
        ordered.extend((preference, host) for host in hosts)
    return ordered


async def resolve_route(
    domain: str,
    resolver: Resolver,
    rng: random.Random,
    *,
    allow_private: bool = False,
    port: int = SMTP_PORT,
) -> Route:
    """The hosts to try for `domain` (an ASCII/IDNA domain). Raises RoutingError."""
    name = domain.strip().rstrip(".").lower()
    try:
        records = await resolver.mx(name)
        if any(host == "." for _, host in records):
            if len(records) == 1:
                raise RoutingError("5.1.10", f"{name} accepts no mail (null MX, RFC 7505)")
            records = [(p, h) for p, h in records if h != "."]
        implicit = not records
        candidates = [(0, name)] if implicit else _ordered(records, rng)[:MAX_MX_HOSTS]
        hosts: list[MailHost] = []
        dropped = False
        for preference, host in candidates:
            found = await _addresses(resolver, host)
            usable = [a for a in found if allow_private or is_public_address(a)]
            dropped = dropped or len(usable) < len(found)
            if usable:
                hosts.append(MailHost(host, preference, tuple(usable), port))
    except DnsError as exc:
        raise RoutingError("4.4.3", f"DNS lookup for {name} failed: {exc}") from exc
    if hosts:
        return Route(name, tuple(hosts), implicit)
    if dropped:
        raise RoutingError("5.4.4", f"the mail servers of {name} have only non-public addresses")
    if implicit:
        raise RoutingError("5.1.2", f"{name} has no mail server (no MX and no address)")
    raise RoutingError("4.4.3", f"no MX host of {name} has an address yet")
