"""A host name's addresses for an outgoing HTTP request (the link check, webhooks): through
Postroom's resolver when --resolver is set, else the system's (getaddrinfo). The caller checks
every address and connects to the one it checked, so a name cannot pass the check with one
address and connect to another."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

from postroom.dns.resolver import Resolver

Resolve = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    """The host's addresses through getaddrinfo, in its order, without repeats."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def dns_resolve(resolver: Resolver) -> Resolve:
    """Resolve through the resolver: A and AAAA records; an IP literal is its own address."""

    async def resolve(host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        return [*await resolver.a(host), *await resolver.aaaa(host)]

    return resolve
