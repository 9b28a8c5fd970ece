"""Sending domains through the service with an in-memory resolver: keys, records, verification,
rotation, retirement, the periodic re-check."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, NotFound, Refusal
from postroom.dns.dkim import dump_private_key, generate_ed25519, load_private_key, public_key_b64
from postroom.platform import DomainReport, PlatformService, check_once
from postroom.supervisor import Supervisor
from tests.signing import selectors, submit
from tests.unit.platform.conftest import MemoryResolver


def publish(resolver: MemoryResolver, report: DomainReport, kinds: set[str]) -> None:
    for record in report.records:
        if record.kind in kinds and record.type == "TXT":
            resolver.publish(record.name, record.value)


def statuses(report: DomainReport) -> dict[str, str]:
    return {f"{r.kind}:{r.name}": r.status for r in report.records}


def test_add_domain_makes_a_key_and_the_records(service: PlatformService) -> None:
    service.create_project("acme")
    rep = service.add_domain("acme", "Example.COM.")
    d = rep.domain
    assert d.name == "example.com" and not d.verified and d.last_checked is None
    (key,) = d.dkim_keys
    assert (key.algorithm, key.status, key.selector) == ("rsa", "active", "pr20260101")
    assert load_private_key(key.private_pem).key_size == 2048  # type: ignore[union-attr]
    kinds = [(r.kind, r.name, r.type) for r in rep.records]
    assert kinds == [
        ("verification", "_postroom.example.com", "TXT"),
        ("dkim", "pr20260101._domainkey.example.com", "TXT"),
        ("spf", "example.com", "TXT"),
        ("dmarc", "_dmarc.example.com", "TXT"),
        ("return_path_mx", "rp.example.com", "MX"),
        ("return_path_spf", "rp.example.com", "TXT"),
        ("inbound_mx", "example.com", "MX"),
    ]
    by_kind = {r.kind: r for r in rep.records}
    assert by_kind["verification"].value == f"postroom-verification={d.verification_token}"
    assert by_kind["dkim"].value == key.public_record and by_kind["dkim"].required
    assert by_kind["spf"].value == "v=spf1 include:_spf.mail.postroom.test ~all"
    assert by_kind["return_path_mx"].value == "10 mail.postroom.test"
    assert all(r.status == "unchecked" for r in rep.records)
    assert rep.keys[0].name == "pr20260101._domainkey.example.com"
    assert service.records("acme", "EXAMPLE.com").records == rep.records

    with pytest.raises(InvalidInput) as dup:
        service.add_domain("acme", "example.com", algorithm="ed25519")
    assert dup.value.field == "domain"
    with pytest.raises(InvalidInput) as bad:
        service.add_domain("acme", "not_a_domain")
    assert bad.value.field == "domain"
    with pytest.raises(InvalidInput) as bad_alg:
        service.add_domain("acme", "x.example", algorithm="dsa")
    assert bad_alg.value.field == "algorithm"
    with pytest.raises(NotFound):
        service.add_domain("ghost", "y.example", algorithm="ed25519")


def test_ed25519_and_own_keys(service: PlatformService) -> None:
    ed = service.add_domain("default", "ed.example", algorithm="ed25519", selector="Mail2026")
    (key,) = ed.domain.dkim_keys
    assert (key.algorithm, key.selector) == ("ed25519", "mail2026")
    mine = generate_ed25519()
    own = service.add_domain(
        "default", "own.example", private_key=dump_private_key(mine).decode()
    ).domain
    assert own.dkim_keys[0].public_record.endswith(public_key_b64(mine))
    with pytest.raises(InvalidInput) as wrong:
        service.add_domain(
            "default", "w.example", algorithm="rsa", private_key=dump_private_key(mine).decode()
        )
    assert wrong.value.field == "algorithm"
    with pytest.raises(InvalidInput) as garbage:
        service.add_domain("default", "g.example", private_key="not a key")
    assert garbage.value.field == "private_key"
    with pytest.raises(InvalidInput) as bad_selector:
        service.add_domain("default", "s.example", algorithm="ed25519", selector="a b")
    assert bad_selector.value.field == "selector"


async def test_verify(service: PlatformService, resolver: MemoryResolver, clock: FakeClock) -> None:
    rep = service.add_domain("default", "example.com", algorithm="ed25519")
    first = await service.verify("default", "example.com")
    assert not first.domain.verified and first.domain.last_checked == clock.now()
    assert statuses(first)["verification:_postroom.example.com"] == "missing"

    publish(resolver, rep, {"verification"})
    clock.advance(60)
    half = await service.verify("default", "example.com")
    assert not half.domain.verified
    assert statuses(half)["verification:_postroom.example.com"] == "ok"

    publish(resolver, rep, {"dkim"})
    clock.advance(60)
    done = await service.verify("default", "example.com")
    assert done.domain.verified and done.domain.verified_at == clock.now()
    assert statuses(done)["dkim:pr20260101._domainkey.example.com"] == "ok"
    assert statuses(done)["spf:example.com"] == "missing"  # guidance only
    stored = json.loads(service.get_domain("default", "example.com").check_json)
    assert stored["verified"] is True and len(stored["records"]) == len(done.records)
    assert service.records("default", "example.com").records == done.records

    # A DNS failure says nothing about the records: the verdict stands.
    resolver.failing.add("pr20260101._domainkey.example.com")
    clock.advance(60)
    flaky = await service.verify("default", "example.com")
    assert flaky.domain.verified
    assert statuses(flaky)["dkim:pr20260101._domainkey.example.com"] == "error"
    resolver.failing.clear()

    # The key record taken down: no longer verified.
    resolver.unpublish("pr20260101._domainkey.example.com")
    clock.advance(60)
    gone = await service.verify("default", "example.com")
    assert not gone.domain.verified and gone.domain.verified_at is None
    assert statuses(gone)["dkim:pr20260101._domainkey.example.com"] == "missing"


async def test_rotation(
    service: PlatformService, resolver: MemoryResolver, clock: FakeClock
) -> None:
    service.create_project("acme", mode="live")
    rep = service.add_domain("acme", "example.com", algorithm="ed25519")
    publish(resolver, rep, {"verification", "dkim"})
    assert (await service.verify("acme", "example.com")).domain.verified
    [old] = service.get_domain("acme", "example.com").dkim_keys
    assert await signed_with(service, clock) == [old.selector]

    pending = service.rotate("acme", "example.com")  # same day: a suffixed selector
    assert (pending.selector, pending.status, pending.algorithm) == (
        "pr20260101b",
        "pending",
        "ed25519",
    )
    assert pending.name == "pr20260101b._domainkey.example.com"
    assert await signed_with(service, clock) == [old.selector]  # still signing
    rows = {r.selector: r for r in service.records("acme", "example.com").records if r.selector}
    assert rows["pr20260101b"].key_status == "pending" and not rows["pr20260101b"].required
    # Rotation in progress does not unverify the domain.
    assert (await service.verify("acme", "example.com")).domain.verified

    with pytest.raises(InvalidInput) as unpublished:
        await service.activate("acme", "example.com", "pr20260101b")
    assert unpublished.value.field == "selector"
    assert "pr20260101b._domainkey.example.com" in str(unpublished.value)
    assert pending.value in str(unpublished.value)  # says what to publish

    again = service.rotate("acme", "example.com", selector="next")  # replaces the pending
    assert {k.selector for k in service.get_domain("acme", "example.com").dkim_keys} == {
        "pr20260101",
        "next",
    }
    resolver.publish(again.name, again.value)
    clock.advance(3600)
    activated = await service.activate("acme", "example.com", "NEXT")
    keys = {k.selector: k for k in activated.dkim_keys}
    assert keys["next"].status == "active" and keys["next"].activated == clock.now()
    assert keys["pr20260101"].status == "retiring"
    assert keys["pr20260101"].retire_after == clock.now() + timedelta(days=7)
    assert await signed_with(service, clock) == ["next"]  # production switched keys

    with pytest.raises(InvalidInput):
        await service.activate("acme", "example.com", "next")  # already active
    with pytest.raises(NotFound):
        await service.activate("acme", "example.com", "nosuch")

    assert service.retire_expired(clock.now() + timedelta(days=6)) == []
    retired = service.retire_expired(clock.now() + timedelta(days=7))
    assert retired == [("acme", "example.com", "pr20260101")]
    old_now = {k.selector: k for k in service.get_domain("acme", "example.com").dkim_keys}
    assert old_now["pr20260101"].status == "retired"
    assert old_now["pr20260101"].private_pem == ""  # erased
    with pytest.raises(InvalidInput):
        await service.activate("acme", "example.com", "pr20260101")
    # Retired keys are no longer among the records to publish.
    assert all(r.selector != "pr20260101" for r in service.records("acme", "example.com").records)


async def test_only_a_verified_domain_of_the_project_signs(
    service: PlatformService, resolver: MemoryResolver, clock: FakeClock
) -> None:
    service.create_project("acme", mode="live")
    service.create_project("other", mode="live")
    with pytest.raises(Refusal):  # no such domain: the sender is not verified, nothing signs
        await signed_with(service, clock)
    rep = service.add_domain("acme", "example.com", algorithm="ed25519")
    with pytest.raises(Refusal):  # not verified yet
        await signed_with(service, clock)
    publish(resolver, rep, {"verification", "dkim"})
    assert (await service.verify("acme", "example.com")).domain.verified
    assert await signed_with(service, clock) == [rep.keys[0].selector]
    with pytest.raises(Refusal):  # another project's domain
        await signed_with(service, clock, project="other")
    issued = service.add_address("other", "alice@example.com")
    service.confirm_address(issued.token)  # as the link of the verification mail would
    assert await signed_with(service, clock, project="other") == []  # verified, no key
    # a pending key alongside the active one does not sign
    service.rotate("acme", "example.com", selector="later")
    assert await signed_with(service, clock) == [rep.keys[0].selector]


MESSAGE = b"From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: s\r\n\r\nHi\r\n"


async def signed_with(
    service: PlatformService, clock: FakeClock, project: str = "acme"
) -> list[str]:
    """The selectors of the DKIM signatures the submission pipeline puts on a message from
    alice@example.com in `project`."""
    return selectors(await submit(service.store, clock, project, MESSAGE))


async def test_periodic_checks(
    service: PlatformService, resolver: MemoryResolver, clock: FakeClock
) -> None:
    a = service.add_domain("default", "a.example", algorithm="ed25519")
    service.add_domain("default", "b.example", algorithm="ed25519")
    publish(resolver, a, {"verification", "dkim"})
    assert await check_once(service, 300, clock) == 2  # never checked: both due
    assert service.get_domain("default", "a.example").verified
    assert await check_once(service, 300, clock) == 0  # nothing due yet
    clock.advance(300)
    assert await check_once(service, 300, clock) == 1  # the unverified one only
    clock.advance(24 * 300)
    assert await check_once(service, 300, clock) == 2  # the verified one is due too

    # Under the supervisor, on the fake clock: a new domain gets checked without anyone asking.
    service.add_domain("default", "c.example", algorithm="ed25519")
    jobs = Supervisor(clock)

    async def check() -> None:
        await check_once(service, 300, clock)

    jobs.every("domain-checks", 300, check, first=300)
    jobs.start()
    try:
        for _ in range(200):  # the job parks on the clock before its first round
            if clock.sleepers:
                break
            await asyncio.sleep(0)
        assert service.get_domain("default", "c.example").last_checked is None
        clock.advance(300)
        for _ in range(200):
            if jobs.state("domain-checks").runs:
                break
            await asyncio.sleep(0.01)
        assert service.get_domain("default", "c.example").last_checked is not None
    finally:
        await jobs.stop()
    with pytest.raises(ValueError):
        jobs.every("never", 0, check)
