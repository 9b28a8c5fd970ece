"""Domain verification and DKIM rotation against a real DNS server (tests/dnszone.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, Refusal, RefusalKind
from postroom.dns.resolver import DnsPythonResolver
from postroom.platform import DomainReport, DomainSettings, PlatformService
from postroom.storage.engine import open_platform_store
from tests.dnszone import DnsZone, dkimpy_verify
from tests.signing import selectors, submit

MESSAGE = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: signed\r\n"
    b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"\r\n"
    b"Hello.\r\n"
)


@pytest.fixture
def service(tmp_path: Path, dns_zone: DnsZone) -> Iterator[PlatformService]:
    store = open_platform_store(tmp_path / "data")
    svc = PlatformService(
        store,
        FakeClock(),
        DnsPythonResolver(dns_zone.nameserver, timeout=2.0),
        DomainSettings(hostname="mail.postroom.test"),
    )
    try:
        yield svc
    finally:
        store.close()


def publish(zone: DnsZone, report: DomainReport, kinds: set[str] | None = None) -> None:
    """Publish the records `report` lists (of these kinds), as a domain owner would."""
    for record in report.records:
        if kinds is not None and record.kind not in kinds:
            continue
        if record.type == "TXT":
            zone.add_txt(record.name, record.value)
        else:
            preference, host = record.value.split(" ", 1)
            zone.add_mx(record.name, int(preference), host)


def by_kind(report: DomainReport) -> dict[str, str]:
    return {r.kind: r.status for r in report.records}


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
async def test_publish_verify_then_take_dkim_down(
    service: PlatformService, dns_zone: DnsZone, algorithm: str
) -> None:
    service.create_project("acme", mode="live")
    added = service.add_domain("acme", "example.com", algorithm=algorithm)
    before = await service.verify("acme", "example.com")
    assert not before.domain.verified
    assert by_kind(before)["verification"] == "missing"

    publish(dns_zone, added)
    report = await service.verify("acme", "example.com")
    assert report.domain.verified
    assert all(r.status == "ok" for r in report.records), [
        (r.kind, r.status, r.detail) for r in report.records
    ]
    # The domain's mail, signed as the submission pipeline signs it, verifies at a receiver.
    signed = await submit(service.store, service.clock, "acme", MESSAGE)
    assert selectors(signed) == [added.keys[0].selector]
    assert dkimpy_verify(signed, dns_zone)

    dns_zone.remove(added.keys[0].name)
    report = await service.verify("acme", "example.com")
    assert not report.domain.verified
    assert by_kind(report)["dkim"] == "missing"
    with pytest.raises(Refusal) as unverified:  # an unverified domain sends nothing at all
        await submit(service.store, service.clock, "acme", MESSAGE)
    assert unverified.value.kind is RefusalKind.IDENTITY_NOT_VERIFIED


async def test_verification_token_must_match(service: PlatformService, dns_zone: DnsZone) -> None:
    added = service.add_domain("default", "example.org", algorithm="ed25519")
    publish(dns_zone, added, {"dkim"})
    dns_zone.add_txt("_postroom.example.org", "postroom-verification=someone-elses")
    report = await service.verify("default", "example.org")
    assert not report.domain.verified
    assert by_kind(report)["verification"] == "mismatch"


async def test_a_dns_timeout_leaves_the_verdict(
    service: PlatformService, dns_zone: DnsZone
) -> None:
    added = service.add_domain("default", "example.net", algorithm="ed25519")
    publish(dns_zone, added)
    assert (await service.verify("default", "example.net")).domain.verified
    dns_zone.fail("_postroom.example.net")  # SERVFAIL: says nothing about the record
    report = await service.verify("default", "example.net")
    assert by_kind(report)["verification"] == "error"
    assert report.domain.verified


async def test_rotation_through_dns(service: PlatformService, dns_zone: DnsZone) -> None:
    service.create_project("acme", mode="live")
    added = service.add_domain("acme", "example.com", algorithm="ed25519")
    publish(dns_zone, added)
    assert (await service.verify("acme", "example.com")).domain.verified
    [old] = service.get_domain("acme", "example.com").dkim_keys
    assert selectors(await submit(service.store, service.clock, "acme", MESSAGE)) == [old.selector]

    pending = service.rotate("acme", "example.com", algorithm="rsa")
    assert pending.status == "pending" and pending.algorithm == "rsa"
    with pytest.raises(InvalidInput) as early:
        await service.activate("acme", "example.com", pending.selector)
    assert pending.name in str(early.value)
    # production still signs with the old key
    assert selectors(await submit(service.store, service.clock, "acme", MESSAGE)) == [old.selector]

    dns_zone.add_txt(pending.name, "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")
    with pytest.raises(InvalidInput):  # something there, but not our key
        await service.activate("acme", "example.com", pending.selector)
    dns_zone.remove(pending.name)
    dns_zone.add_txt(pending.name, pending.value)
    domain = await service.activate("acme", "example.com", pending.selector)
    statuses = {k.selector: k.status for k in domain.dkim_keys}
    assert statuses == {old.selector: "retiring", pending.selector: "active"}

    # production switched keys: its signature uses the new selector and verifies
    signed = await submit(service.store, service.clock, "acme", MESSAGE)
    assert selectors(signed) == [pending.selector]
    assert dkimpy_verify(signed, dns_zone)
    report = await service.verify("acme", "example.com")
    assert report.domain.verified
    dkim_rows = {r.selector: (r.status, r.key_status) for r in report.records if r.kind == "dkim"}
    assert dkim_rows == {old.selector: ("ok", "retiring"), pending.selector: ("ok", "active")}
