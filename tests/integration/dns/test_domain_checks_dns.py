"""check_domain through DnsPythonResolver and the real test DNS server, records as published."""

from __future__ import annotations

from datetime import UTC, datetime

from postroom.core.clock import FakeClock
from postroom.dns.dkim import DkimSigner, dated_selector, generate_rsa
from postroom.dns.domain_checks import (
    DkimPublication,
    DomainSpec,
    SpfPolicy,
    check_domain,
    expected_records,
    new_verification_token,
    return_path_domain,
)
from postroom.dns.resolver import DnsPythonResolver
from tests.dnszone import DnsZone, dkimpy_verify

WHEN = datetime(2025, 6, 1, tzinfo=UTC)


async def test_publish_the_expected_records_then_verify_and_sign(dns_zone: DnsZone) -> None:
    key = generate_rsa(2048)
    selector = dated_selector(WHEN)
    spec = DomainSpec(
        domain="shop.example",
        verification_token=new_verification_token(),
        dkim=(DkimPublication.for_key(selector, key),),
        spf=SpfPolicy(includes=("_spf.postroom.test",)),
        return_path=return_path_domain("shop.example"),
        return_path_mx=("bounces.postroom.test",),
        inbound_mx=("mx.postroom.test",),
    )
    resolver = DnsPythonResolver(dns_zone.nameserver, timeout=2.0)

    before = await check_domain(resolver, spec)
    assert not before.verified
    assert {c.status for c in before.checks} == {"missing"}

    # The user publishes exactly what the UI lists (long DKIM TXT split into 255-byte strings).
    for record in expected_records(spec):
        if record.type == "TXT":
            dns_zone.add_txt(record.name, record.value)
        else:
            preference, host = record.value.split()
            dns_zone.add_mx(record.name, int(preference), host)

    after = await check_domain(resolver, spec)
    assert [(c.record.kind, c.status) for c in after.checks] == [
        ("verification", "ok"),
        ("dkim", "ok"),
        ("spf", "ok"),
        ("dmarc", "ok"),
        ("return_path_mx", "ok"),
        ("return_path_spf", "ok"),
        ("inbound_mx", "ok"),
    ]
    assert after.verified

    # A receiver looking at the same zone accepts our signatures.
    message = b"From: orders@shop.example\r\nTo: a@example.net\r\nSubject: hi\r\n\r\nthanks\r\n"
    signed = DkimSigner("shop.example", selector, key, FakeClock(WHEN)).sign(message) + message
    assert dkimpy_verify(signed, dns_zone)

    # The key is rotated in DNS by mistake: no longer verified.
    dns_zone.remove(f"{selector}._domainkey.shop.example")
    dns_zone.add_txt(f"{selector}._domainkey.shop.example", "v=DKIM1; k=rsa; p=")
    rotated = await check_domain(resolver, spec)
    assert rotated.of_kind("dkim")[0].status == "mismatch"
    assert not rotated.verified


async def test_delegated_dkim_cname_and_dns_failures(dns_zone: DnsZone) -> None:
    key = generate_rsa(1024)
    spec = DomainSpec(
        domain="example.org",
        verification_token="tok",
        dkim=(DkimPublication.for_key("sel", key),),
    )
    dns_zone.add_txt("_postroom.example.org", "postroom-verification=tok")
    dns_zone.add_cname("sel._domainkey.example.org", "sel.dkim.postroom.test")
    dns_zone.add_txt("sel.dkim.postroom.test", DkimPublication.for_key("sel", key).record)
    resolver = DnsPythonResolver(dns_zone.nameserver, timeout=0.5)
    assert (await check_domain(resolver, spec)).verified

    dns_zone.drop("_dmarc.example.org")
    dns_zone.fail("_postroom.example.org", "SERVFAIL")
    result = await check_domain(resolver, spec)
    assert result.of_kind("verification")[0].status == "error"
    assert result.of_kind("dmarc")[0].status == "error"
    assert result.of_kind("dkim")[0].status == "ok"
    assert not result.verified
