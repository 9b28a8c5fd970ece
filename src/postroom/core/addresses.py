"""Which IP addresses a tenant may make the server connect to: globally reachable unicast
ones. Loopback, private, link-local, multicast, unspecified and reserved addresses are the
server's own network (delivery, the link check and webhooks refuse them unless an option
allows them)."""

from __future__ import annotations

import ipaddress


def is_public_address(address: str) -> bool:
    """True for a globally reachable unicast address (an IPv4-mapped IPv6 address counts as
    its IPv4; a zone index is ignored; anything that is not an address is False)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
