"""SPF check_host() through the real resolver adapter and a DNS server on 127.0.0.1."""

from __future__ import annotations

import pytest

from postroom.dns.resolver import DnsPythonResolver
from postroom.dns.spf import check_host
from tests.dnszone import DnsZone, dns_zone

__all__ = ["dns_zone"]


async def result(zone: DnsZone, ip: str, domain: str = "example.test", sender: str = "") -> str:
    resolver = DnsPythonResolver(zone.nameserver, timeout=1.0)
    outcome = await check_host(ip, domain, sender or f"bob@{domain}", resolver)
    return outcome.result


async def test_ip_networks_qualifiers_and_default(dns_zone: DnsZone) -> None:
    dns_zone.add_txt(
        "example.test", "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~ip4:198.51.100.7 -all"
    )
    dns_zone.add_txt(
        "example.test", "google-site-verification=abc"
    )  # other TXT records are ignored
    assert await result(dns_zone, "192.0.2.55") == "pass"
    assert await result(dns_zone, "2001:db8::1") == "pass"
    assert await result(dns_zone, "::ffff:192.0.2.9") == "pass"
    assert await result(dns_zone, "198.51.100.7") == "softfail"
    assert await result(dns_zone, "203.0.113.1") == "fail"
    dns_zone.add_txt("neutral.test", "v=spf1 ip4:192.0.2.1")
    assert await result(dns_zone, "203.0.113.1", "neutral.test") == "neutral"
    assert await result(dns_zone, "203.0.113.1", "nothing.test") == "none"


async def test_a_mx_include_redirect_and_exists(dns_zone: DnsZone) -> None:
    dns_zone.add_a("example.test", "192.0.2.10")
    dns_zone.add_mx("example.test", 10, "mx.example.test")
    dns_zone.add_a("mx.example.test", "192.0.2.20")
    dns_zone.add_a("relay.example.test", "198.51.100.0")
    dns_zone.add_txt("example.test", "v=spf1 a mx a:relay.example.test/28 include:esp.test ?all")
    dns_zone.add_txt("esp.test", "v=spf1 redirect=_spf.esp.test")
    dns_zone.add_txt("_spf.esp.test", "v=spf1 ip4:203.0.113.0/24 exists:%{i}.allow.esp.test -all")
    dns_zone.add_a("198.51.100.200.allow.esp.test", "127.0.0.2")
    assert await result(dns_zone, "192.0.2.10") == "pass"
    assert await result(dns_zone, "192.0.2.20") == "pass"
    assert await result(dns_zone, "198.51.100.9") == "pass"  # a:relay/28
    assert await result(dns_zone, "203.0.113.99") == "pass"  # include -> redirect
    assert await result(dns_zone, "198.51.100.200") == "pass"  # exists with the %{i} macro
    assert await result(dns_zone, "192.0.2.99") == "neutral"  # include fails -> ?all


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ("v=spf1 include:missing.test -all", "permerror"),
        ("v=spf1 foo:bar -all", "permerror"),
        ("v=spf1 ip4:300.1.1.1 -all", "permerror"),
        ("v=spf1 redirect=a.test redirect=b.test", "permerror"),
        ("v=spf1 " + " ".join(f"a:h{i}.test" for i in range(11)) + " -all", "permerror"),
        ("v=spf1 a:v1.test a:v2.test a:v3.test -all", "permerror"),  # three void lookups
        ("v=spf1 exists:%{z}.test -all", "permerror"),
    ],
)
async def test_errors(dns_zone: DnsZone, record: str, expected: str) -> None:
    dns_zone.add_txt("bad.test", record)
    assert await result(dns_zone, "192.0.2.1", "bad.test") == expected


async def test_two_records_and_dns_failure(dns_zone: DnsZone) -> None:
    dns_zone.add_txt("two.test", "v=spf1 -all")
    dns_zone.add_txt("two.test", "v=spf1 +all")
    assert await result(dns_zone, "192.0.2.1", "two.test") == "permerror"
    dns_zone.fail("broken.test", "SERVFAIL")
    assert await result(dns_zone, "192.0.2.1", "broken.test") == "temperror"


async def test_loops_are_bounded(dns_zone: DnsZone) -> None:
    dns_zone.add_txt("loop.test", "v=spf1 include:loop.test -all")
    assert await result(dns_zone, "192.0.2.1", "loop.test") == "permerror"


async def test_dmarc_alignment_and_policies(dns_zone: DnsZone) -> None:
    from postroom.dns.dmarc import aligned, evaluate, organizational_domain

    resolver = DnsPythonResolver(dns_zone.nameserver, timeout=1.0)
    dns_zone.add_txt(
        "_dmarc.example.test",
        "v=DMARC1; p=reject; sp=quarantine; adkim=s; rua=mailto:d@example.test",
    )
    outcome = await evaluate("example.test", ("pass", "bounce.example.test"), [], resolver)
    assert outcome.result == "pass" and outcome.spf_aligned  # relaxed SPF alignment
    outcome = await evaluate(
        "example.test", ("fail", "example.test"), ["mail.example.test"], resolver
    )
    assert (
        outcome.result == "fail"
        and outcome.policy is not None
        and outcome.policy.policy == "reject"
    )
    outcome = await evaluate("news.example.test", ("none", ""), ["news.example.test"], resolver)
    assert outcome.result == "pass" and outcome.policy is not None
    assert (outcome.policy.domain, outcome.policy.policy) == ("example.test", "quarantine")  # sp=
    assert (await evaluate("other.test", ("pass", "other.test"), [], resolver)).result == "none"
    dns_zone.fail("_dmarc.broken.test", "SERVFAIL")
    assert (
        await evaluate("broken.test", ("pass", "broken.test"), [], resolver)
    ).result == "temperror"
    assert organizational_domain("a.b.example.co.uk") == "example.co.uk"
    assert aligned("mail.example.co.uk", "example.co.uk", "r")
    assert not aligned("mail.example.co.uk", "example.co.uk", "s")
    assert not aligned("example.co.uk", "other.co.uk", "r")
