"""The key under which per-client limits count a peer: its IPv4 address, or its IPv6 /64.

One host commonly holds a whole IPv6 /64 (SLAAC, privacy addresses), so counting IPv6 peers
address by address would let one machine take any number of slots.
"""

from __future__ import annotations

import ipaddress


def client_key(host: str) -> str:
    """The counting key of a peer address: the IPv4 address (an IPv4-mapped IPv6 address
    counts as its IPv4 address), or the IPv6 /64 network; anything unparseable as itself."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
