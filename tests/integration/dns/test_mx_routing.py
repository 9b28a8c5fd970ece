"""MX routing through the real resolver adapter against a DNS server on 127.0.0.1."""

from __future__ import annotations

import random

import pytest

from postroom.core.addresses import is_public_address
from postroom.delivery.routing import RoutingError, resolve_route
from postroom.dns.resolver import DnsPythonResolver
from tests.dnszone import DnsZone, dns_zone

__all__ = ["dns_zone"]


def resolver(zone: DnsZone) -> DnsPythonResolver:
    return DnsPythonResolver(zone.nameserver, timeout=1.0)


async def test_preference_order_and_shuffle_among_equals(dns_zone: DnsZone) -> None:
    dns_zone.add_mx("example.test", 20, "backup.example.test")
    for host in ("a", "b", "c"):
        dns_zone.add_mx("example.test", 10, f"{host}.example.test")
        dns_zone.add_a(f"{host}.example.test", f"192.0.2.{ord(host)}")
    dns_zone.add_aaaa("backup.example.test", "2001:db8::1")
    seen = set()
    for seed in range(12):
        route = await resolve_route(
            "Example.TEST.", resolver(dns_zone), random.Random(seed), allow_private=True
        )
        names = [h.name for h in route.hosts]
        assert sorted(names[:3]) == ["a.example.test", "b.example.test", "c.example.test"]
        assert names[3] == "backup.example.test"
        assert route.hosts[3].addresses == ("2001:db8::1",) and not route.implicit
        seen.add(tuple(names[:3]))
    assert len(seen) > 1  # equal preferences are not always tried in one order


async def test_implicit_mx_null_mx_and_missing_domains(dns_zone: DnsZone) -> None:
    dns_zone.add_a("plain.test", "192.0.2.7")
    route = await resolve_route(
        "plain.test", resolver(dns_zone), random.Random(1), allow_private=True
    )
    assert route.implicit and [h.name for h in route.hosts] == ["plain.test"]

    dns_zone.add_mx("nullmx.test", 0, ".")
    cases = {"nullmx.test": "5.1.10", "nowhere.test": "5.1.2"}
    dns_zone.add_mx("dangling.test", 10, "gone.dangling.test")
    cases["dangling.test"] = "4.4.3"
    for domain, status in cases.items():
        with pytest.raises(RoutingError) as caught:
            await resolve_route(domain, resolver(dns_zone), random.Random(1))
        assert caught.value.enhanced == status, domain
    assert not RoutingError("5.1.10", "x").temporary and RoutingError("4.4.3", "x").temporary


async def test_dns_failure_is_temporary(dns_zone: DnsZone) -> None:
    dns_zone.fail("broken.test", "SERVFAIL")
    with pytest.raises(RoutingError) as caught:
        await resolve_route("broken.test", resolver(dns_zone), random.Random(1))
    assert caught.value.temporary and caught.value.enhanced == "4.4.3"


async def test_private_and_loopback_destinations_are_refused_unless_allowed(
    dns_zone: DnsZone,
) -> None:
    dns_zone.add_mx("inside.test", 10, "mx.inside.test")
    dns_zone.add_a("mx.inside.test", "127.0.0.1")
    dns_zone.add_a("mx.inside.test", "10.1.2.3")
    with pytest.raises(RoutingError) as caught:
        await resolve_route("inside.test", resolver(dns_zone), random.Random(1))
    assert caught.value.enhanced == "5.4.4"
    route = await resolve_route(
        "inside.test", resolver(dns_zone), random.Random(1), allow_private=True
    )
    assert set(route.hosts[0].addresses) == {"127.0.0.1", "10.1.2.3"}


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2a00:1450::1", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("192.168.1.1", False),
        ("169.254.1.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("not an address", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public
