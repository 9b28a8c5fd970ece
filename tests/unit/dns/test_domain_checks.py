"""Domain checks against an in-memory resolver (the real DNS path is in tests/integration/dns)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization

from postroom.core.errors import InvalidInput
from postroom.dns.dkim import dns_record, generate_ed25519, generate_rsa, public_key_b64
from postroom.dns.domain_checks import (
    DkimPublication,
    DomainSpec,
    SpfPolicy,
    check_domain,
    check_spf,
    expected_records,
    new_verification_token,
    return_path_domain,
)
from postroom.dns.resolver import DnsError, Resolver

RSA_KEY = generate_rsa(2048)
ED_KEY = generate_ed25519()
POLICY = SpfPolicy(includes=("_spf.postroom.test",), ip4=("192.0.2.10",), ip6=("2001:db8::/64",))


class MemoryResolver:
    """A Resolver over dicts; names listed in `failing` raise DnsError."""

    def __init__(self) -> None:
        self.txt_records: dict[str, list[str]] = {}
        self.mx_records: dict[str, list[tuple[int, str]]] = {}
        self.failing: set[str] = set()
        self.asked: list[tuple[str, str]] = []

    def _check(self, name: str, rtype: str) -> None:
        self.asked.append((name, rtype))
        if name in self.failing:
            raise DnsError(f"DNS query for {name} {rtype} timed out", name, rtype)

    async def txt(self, name: str) -> list[str]:
        self._check(name, "TXT")
        return list(self.txt_records.get(name, []))

    async def mx(self, name: str) -> list[tuple[int, str]]:
        self._check(name, "MX")
        return sorted(self.mx_records.get(name, []))

    async def a(self, name: str) -> list[str]:
        self._check(name, "A")
        return []

    async def aaaa(self, name: str) -> list[str]:
        self._check(name, "AAAA")
        return []


def spec(**kwargs: object) -> DomainSpec:
    settings: dict[str, object] = {
        "domain": "Example.COM.",
        "verification_token": "tok123",
        "dkim": (
            DkimPublication.for_key("pr20261129", RSA_KEY),
            DkimPublication.for_key("pr20261129e", ED_KEY),
        ),
        "spf": POLICY,
        "return_path": return_path_domain("example.com"),
        "return_path_mx": ("bounces.postroom.test",),
        "inbound_mx": ("mx1.postroom.test", "mx2.postroom.test"),
        "dmarc_rua": "dmarc@example.com",
    }
    settings.update(kwargs)
    return DomainSpec(**settings)  # type: ignore[arg-type]


def publish_all(resolver: MemoryResolver) -> None:
    resolver.txt_records = {
        "_postroom.example.com": ["postroom-verification=tok123"],
        "pr20261129._domainkey.example.com": [dns_record(RSA_KEY)],
        "pr20261129e._domainkey.example.com": [dns_record(ED_KEY)],
        "example.com": [
            "google-site-verification=xyz",
            "v=spf1 include:_spf.postroom.test ip4:192.0.2.0/24 ip6:2001:db8::/48 -all",
        ],
        "_dmarc.example.com": ["v=DMARC1; p=quarantine; rua=mailto:d@example.com"],
        "rp.example.com": [
            "v=spf1 include:_spf.postroom.test ip4:192.0.2.10 ip6:2001:db8::/64 ~all"
        ],
    }
    resolver.mx_records = {
        "rp.example.com": [(10, "bounces.postroom.test")],
        "example.com": [(10, "mx1.postroom.test"), (20, "MX2.postroom.test")],
    }


def test_expected_records() -> None:
    records = expected_records(spec())
    summary = [(r.kind, r.name, r.type, r.required) for r in records]
    assert summary == [
        ("verification", "_postroom.example.com", "TXT", True),
        ("dkim", "pr20261129._domainkey.example.com", "TXT", True),
        ("dkim", "pr20261129e._domainkey.example.com", "TXT", True),
        ("spf", "example.com", "TXT", False),
        ("dmarc", "_dmarc.example.com", "TXT", False),
        ("return_path_mx", "rp.example.com", "MX", False),
        ("return_path_spf", "rp.example.com", "TXT", False),
        ("inbound_mx", "example.com", "MX", False),
        ("inbound_mx", "example.com", "MX", False),
    ]
    values = {r.kind: r.value for r in records}
    assert values["verification"] == "postroom-verification=tok123"
    assert (
        values["spf"] == "v=spf1 include:_spf.postroom.test ip4:192.0.2.10 ip6:2001:db8::/64 ~all"
    )
    assert values["dmarc"] == "v=DMARC1; p=none; rua=mailto:dmarc@example.com"
    assert values["return_path_mx"] == "10 bounces.postroom.test"
    assert [r.value for r in records if r.kind == "inbound_mx"] == [
        "10 mx1.postroom.test",
        "20 mx2.postroom.test",
    ]
    assert records[1].value == dns_record(RSA_KEY)


def test_minimal_spec_lists_only_what_applies() -> None:
    records = expected_records(DomainSpec("example.org", "t", dkim=()))
    assert [r.kind for r in records] == ["verification", "dmarc"]


async def test_everything_published_is_verified() -> None:
    resolver = MemoryResolver()
    publish_all(resolver)
    result = await check_domain(resolver, spec())
    assert result.domain == "example.com"
    assert [(c.record.kind, c.status) for c in result.checks] == [
        ("verification", "ok"),
        ("dkim", "ok"),
        ("dkim", "ok"),
        ("spf", "ok"),
        ("dmarc", "ok"),
        ("return_path_mx", "ok"),
        ("return_path_spf", "ok"),
        ("inbound_mx", "ok"),
        ("inbound_mx", "ok"),
    ]
    assert result.verified
    assert "p=quarantine" in result.of_kind("dmarc")[0].detail
    assert result.of_kind("spf")[0].found == (
        "v=spf1 include:_spf.postroom.test ip4:192.0.2.0/24 ip6:2001:db8::/48 -all",
    )
    # Each distinct (name, type) is asked once.
    assert len(resolver.asked) == len(set(resolver.asked)) == 8


async def test_nothing_published() -> None:
    result = await check_domain(MemoryResolver(), spec())
    assert {c.status for c in result.checks} == {"missing"}
    assert not result.verified


async def test_verified_needs_verification_and_every_dkim_key() -> None:
    resolver = MemoryResolver()
    publish_all(resolver)
    resolver.txt_records.pop("pr20261129e._domainkey.example.com")
    result = await check_domain(resolver, spec())
    assert [c.status for c in result.of_kind("dkim")] == ["ok", "missing"]
    assert not result.verified

    publish_all(resolver)
    resolver.txt_records["_postroom.example.com"] = ["postroom-verification=other"]
    result = await check_domain(resolver, spec())
    check = result.of_kind("verification")[0]
    assert check.status == "mismatch" and "another token" in check.detail
    assert not result.verified

    publish_all(resolver)
    resolver.txt_records.pop("example.com")  # SPF, DMARC and MX are guidance only
    resolver.txt_records.pop("_dmarc.example.com")
    resolver.mx_records.clear()
    assert (await check_domain(resolver, spec())).verified


async def test_no_dkim_key_means_not_verified() -> None:
    resolver = MemoryResolver()
    publish_all(resolver)
    result = await check_domain(resolver, spec(dkim=()))
    assert result.of_kind("verification")[0].status == "ok"
    assert not result.verified


async def test_dkim_key_mismatch_revoked_and_duplicates() -> None:
    resolver = MemoryResolver()
    publish_all(resolver)
    name = "pr20261129._domainkey.example.com"
    resolver.txt_records[name] = [dns_record(generate_rsa(1024))]
    check = (await check_domain(resolver, spec())).of_kind("dkim")[0]
    assert check.status == "mismatch" and "not this domain's current key" in check.detail

    resolver.txt_records[name] = ["v=DKIM1; k=rsa; p="]
    check = (await check_domain(resolver, spec())).of_kind("dkim")[0]
    assert check.status == "mismatch" and "revoked" in check.detail

    resolver.txt_records[name] = [dns_record(RSA_KEY), dns_record(generate_rsa(1024))]
    check = (await check_domain(resolver, spec())).of_kind("dkim")[0]
    assert check.status == "mismatch" and "2 DKIM key records" in check.detail

    resolver.txt_records[name] = ["v=spf1 -all", "some text"]
    check = (await check_domain(resolver, spec())).of_kind("dkim")[0]
    assert check.status == "missing"

    # An Ed25519 key with the same bytes is not the RSA key; k= must match.
    ed_p = public_key_b64(ED_KEY)
    resolver.txt_records[name] = [f"v=DKIM1; k=ed25519; p={ed_p}"]
    check = (await check_domain(resolver, spec())).of_kind("dkim")[0]
    assert check.status == "mismatch"


async def test_dkim_key_compared_as_a_key_not_as_text() -> None:
    """Whitespace split by the DNS provider and PKCS#1 encoding still match; k= defaults to rsa."""
    resolver = MemoryResolver()
    publish_all(resolver)
    spki = public_key_b64(RSA_KEY)
    pkcs1 = base64.b64encode(
        RSA_KEY.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )
    ).decode()
    assert pkcs1 != spki
    for published in (
        f"v=DKIM1; p={spki[:100]} {spki[100:]}",
        f"k=rsa; p={pkcs1}",
        f"v=DKIM1;k=rsa;t=s;p={spki}",
    ):
        resolver.txt_records["pr20261129._domainkey.example.com"] = [published]
        check = (await check_domain(resolver, spec())).of_kind("dkim")[0]
        assert check.status == "ok", published


async def test_dkim_wrong_version_is_not_a_match() -> None:
    resolver = MemoryResolver()
    publish_all(resolver)
    resolver.txt_records["pr20261129._domainkey.example.com"] = [
        dns_record(RSA_KEY).replace("DKIM1", "DKIM2")
    ]
    assert (await check_domain(resolver, spec())).of_kind("dkim")[0].status == "mismatch"


async def test_dns_failure_is_an_error_status_not_an_exception() -> None:
    resolver = MemoryResolver()
    publish_all(resolver)
    resolver.failing.add("pr20261129._domainkey.example.com")
    result = await check_domain(resolver, spec())
    check = result.of_kind("dkim")[0]
    assert check.status == "error" and "timed out" in check.detail
    assert result.of_kind("dkim")[1].status == "ok"
    assert not result.verified

    resolver.failing = {"example.com"}
    result = await check_domain(resolver, spec())
    assert [c.status for c in result.of_kind("inbound_mx")] == ["error", "error"]
    assert result.of_kind("spf")[0].status == "error"
    assert result.verified


async def test_mx_checks() -> None:
    resolver = MemoryResolver()
    publish_all(resolver)
    resolver.mx_records["example.com"] = [(10, "mx1.postroom.test."), (20, "mx.other.test")]
    resolver.mx_records["rp.example.com"] = [(0, ".")]
    result = await check_domain(resolver, spec())
    assert [c.status for c in result.of_kind("inbound_mx")] == ["ok", "mismatch"]
    assert "mx2.postroom.test" in result.of_kind("inbound_mx")[1].detail
    assert result.of_kind("inbound_mx")[1].found == ("10 mx1.postroom.test.", "20 mx.other.test")
    assert result.of_kind("return_path_mx")[0].status == "mismatch"


async def test_dmarc_checks() -> None:
    resolver = MemoryResolver()
    publish_all(resolver)
    for records, status in [
        (["v=DMARC1; p=reject"], "ok"),
        (["V=DMARC1 ; p=none"], "ok"),
        (["v=DMARC1; rua=mailto:x@example.com"], "mismatch"),
        (["v=DMARC1; p=none", "v=DMARC1; p=reject"], "mismatch"),
        (["v=spf1 -all"], "missing"),
        (["v=DMARC10; p=none"], "missing"),
    ]:
        resolver.txt_records["_dmarc.example.com"] = records
        check = (await check_domain(resolver, spec())).of_kind("dmarc")[0]
        assert check.status == status, records


@pytest.mark.parametrize(
    ("records", "status", "fragment"),
    [
        ([], "missing", "no SPF record"),
        (["hello", "v=spf10 -all"], "missing", "no SPF record"),
        (["v=spf1 -all", "v=spf1 ~all"], "mismatch", "2 SPF records"),
        (["v=spf1 include:_spf.postroom.test ip4:192.0.2.10 ip6:2001:db8::1/64 ~all"], "ok", ""),
        (["V=SPF1 +include:_SPF.postroom.test. ip4:192.0.0.0/16 ip6:2001:db8::/32 -all"], "ok", ""),
        (["v=spf1 ip4:192.0.2.10 ip6:2001:db8::/64 redirect=_spf.postroom.test"], "ok", ""),
        (
            ["v=spf1 include:_spf.postroom.test ip4:192.0.2.10 ip6:2001:db8::/64 +all"],
            "ok",
            "authorises everybody",
        ),
        (
            ["v=spf1 ~include:_spf.postroom.test ip4:192.0.2.10 ip6:2001:db8::/64 -all"],
            "mismatch",
            "include:_spf.postroom.test",
        ),
        (
            ["v=spf1 include:_spf.postroom.test ip4:192.0.2.11 ip6:2001:db8::/64 -all"],
            "mismatch",
            "ip4:192.0.2.10",
        ),
        (
            ["v=spf1 include:_spf.postroom.test ip4:192.0.2.10 ip6:2001:db8:0:0:1::/80 -all"],
            "mismatch",
            "ip6:2001:db8::/64",
        ),
        (["v=spf1 include:_spf.postroom.test ip4:192.0.2.10 ip4:bogus -all"], "mismatch", "ip6:"),
    ],
)
def test_check_spf(records: list[str], status: str, fragment: str) -> None:
    result, found, detail, _ = check_spf(records, POLICY)
    assert result == status
    assert fragment in detail
    assert all(r.lower().startswith("v=spf1") for r in found)


def test_spf_suggestion_keeps_existing_terms_and_puts_ours_before_all() -> None:
    status, _, _, suggestion = check_spf(
        ["v=spf1 mx include:_spf.google.com -all"], SpfPolicy(includes=("_spf.postroom.test",))
    )
    assert status == "mismatch"
    assert suggestion == "v=spf1 mx include:_spf.google.com include:_spf.postroom.test -all"
    _, _, _, suggestion = check_spf(["v=spf1 a"], SpfPolicy(ip4=("192.0.2.1",)))
    assert suggestion == "v=spf1 a ip4:192.0.2.1"


async def test_spf_mismatch_carries_the_suggestion() -> None:
    resolver = MemoryResolver()
    publish_all(resolver)
    resolver.txt_records["example.com"] = ["v=spf1 mx ~all"]
    check = (await check_domain(resolver, spec())).of_kind("spf")[0]
    assert check.status == "mismatch"
    assert check.suggestion == (
        "v=spf1 mx include:_spf.postroom.test ip4:192.0.2.10 ip6:2001:db8::/64 ~all"
    )


def test_spec_validation_and_helpers() -> None:
    with pytest.raises(InvalidInput):
        DomainSpec("localhost", "t")
    with pytest.raises(InvalidInput):
        DomainSpec("example.com", "  ")
    assert return_path_domain("Example.com.") == "rp.example.com"
    assert return_path_domain("example.com", "bounce") == "bounce.example.com"
    token = new_verification_token()
    assert len(token) >= 32 and token != new_verification_token()


def test_memory_resolver_satisfies_the_port() -> None:
    resolver: Resolver = MemoryResolver()
    assert resolver is not None


def test_idn_domain_is_checked_in_a_labels() -> None:
    records = expected_records(
        DomainSpec(
            "Bücher.example.",
            "t",
            dkim=(DkimPublication.for_key("sel", ED_KEY),),
            return_path=return_path_domain("bücher.example"),
            return_path_mx=("bounces.postroom.test",),
        )
    )
    assert {r.name for r in records} == {
        "_postroom.xn--bcher-kva.example",
        "sel._domainkey.xn--bcher-kva.example",
        "_dmarc.xn--bcher-kva.example",
        "rp.xn--bcher-kva.example",
    }
