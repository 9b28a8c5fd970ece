"""The DNS records a sending domain publishes, and checks that they are there.

`expected_records(spec)` lists what to publish (for the UI and API); `check_domain(resolver,
spec)` looks each up and says, per record, `ok`, `missing`, `mismatch` (something is there but
not what we need; `detail` says what) or `error` (DNS failed; try later). A domain is
`verified` when its verification TXT and every DKIM key are published.

- verification: TXT `_postroom.<domain>` = `postroom-verification=<token>` (proves control)
- dkim: TXT `<selector>._domainkey.<domain>` = `v=DKIM1; k=...; p=...` (for signatures)
- spf: TXT `<domain>` = `v=spf1 ... ~all` (authorises our servers for the domain)
- dmarc: TXT `_dmarc.<domain>` = `v=DMARC1; p=none` (suggested, not required)
- return_path_mx: MX of the return-path domain (bounces reach us)
- return_path_spf: TXT `v=spf1 ...` at the return-path domain (SPF passes and aligns)
- inbound_mx: MX of `<domain>` (inbound mail reaches us)

Only the resolver is injected; everything else is plain data in and out.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from postroom.core.errors import InvalidInput
from postroom.dns.dkim import (
    PrivateKey,
    dns_record,
    dns_record_name,
    normalize_domain,
    parse_tag_list,
)
from postroom.dns.resolver import DnsError, Resolver

__all__ = [
    "VERIFICATION_PREFIX",
    "DkimPublication",
    "DnsRecord",
    "DomainCheckResult",
    "DomainSpec",
    "RecordCheck",
    "RecordKind",
    "SpfPolicy",
    "Status",
    "check_domain",
    "check_spf",
    "expected_records",
    "new_verification_token",
    "return_path_domain",
]

VERIFICATION_PREFIX = "postroom-verification="

RecordKind = Literal[
    "verification", "dkim", "spf", "dmarc", "return_path_mx", "return_path_spf", "inbound_mx"
]
Status = Literal["ok", "missing", "mismatch", "error"]


def new_verification_token() -> str:
    """A fresh random token for the verification TXT record."""
    return secrets.token_urlsafe(24)


def return_path_domain(domain: str, label: str = "rp") -> str:
    """The default return-path (bounce) domain of `domain`, e.g. `rp.example.com`."""
    return f"{label}.{domain.strip().rstrip('.').lower()}"


# -- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DkimPublication:
    """One DKIM key of the domain: its selector and the TXT text to publish."""

    selector: str
    record: str

    @classmethod
    def for_key(cls, selector: str, key: PrivateKey) -> DkimPublication:
        return cls(selector, dns_record(key))


@dataclass(frozen=True, slots=True)
class SpfPolicy:
    """What an SPF record must authorise: `include:` domains and sending addresses/networks."""

    includes: tuple[str, ...] = ()
    ip4: tuple[str, ...] = ()
    ip6: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.includes or self.ip4 or self.ip6)

    def terms(self) -> list[str]:
        return (
            [f"include:{d}" for d in self.includes]
            + [f"ip4:{a}" for a in self.ip4]
            + [f"ip6:{a}" for a in self.ip6]
        )

    def record(self) -> str:
        return " ".join(["v=spf1", *self.terms(), "~all"])


@dataclass(frozen=True, slots=True)
class DomainSpec:
    """A sending domain as configured.

    `return_path`: the bounce domain (see `return_path_domain`), None for none;
    `return_path_mx`: hosts receiving its bounces; `inbound_mx`: hosts that must be MX of the
    domain (empty: inbound is not checked); `dmarc_rua`: address for aggregate reports.
    """

    domain: str
    verification_token: str
    dkim: tuple[DkimPublication, ...] = ()
    spf: SpfPolicy = field(default_factory=SpfPolicy)
    return_path: str | None = None
    return_path_mx: tuple[str, ...] = ()
    inbound_mx: tuple[str, ...] = ()
    dmarc_rua: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "domain", normalize_domain(self.domain))
        if self.return_path is not None:
            object.__setattr__(self, "return_path", normalize_domain(self.return_path))
        if not self.verification_token.strip():
            raise InvalidInput("the verification token is empty", field="verification_token")


# -- outputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DnsRecord:
    """A record to publish. For MX, `value` is `"<preference> <host>"`."""

    kind: RecordKind
    name: str
    type: Literal["TXT", "MX"]
    value: str
    required: bool  # needed for the domain to be verified


@dataclass(frozen=True, slots=True)
class RecordCheck:
    record: DnsRecord
    status: Status
    found: tuple[str, ...]  # the relevant records DNS returned
    detail: str  # one sentence for people
    suggestion: str | None = None  # for `mismatch`: a corrected record to publish instead


@dataclass(frozen=True, slots=True)
class DomainCheckResult:
    domain: str
    checks: tuple[RecordCheck, ...]
    verified: bool

    def of_kind(self, kind: RecordKind) -> tuple[RecordCheck, ...]:
        return tuple(c for c in self.checks if c.record.kind == kind)


# -- expected records -------------------------------------------------------------------------


def _dmarc_record(spec: DomainSpec) -> str:
    value = "v=DMARC1; p=none"
    if spec.dmarc_rua:
        rua = spec.dmarc_rua
        value += f"; rua={rua if rua.startswith('mailto:') else 'mailto:' + rua}"
    return value


def expected_records(spec: DomainSpec) -> tuple[DnsRecord, ...]:
    """Every record the domain should publish, in the order to show them."""
    domain = spec.domain
    records = [
        DnsRecord(
            "verification",
            f"_postroom.{domain}",
            "TXT",
            VERIFICATION_PREFIX + spec.verification_token,
            True,
        )
    ]
    for pub in spec.dkim:
        records.append(
            DnsRecord("dkim", dns_record_name(pub.selector, domain), "TXT", pub.record, True)
        )
    if not spec.spf.empty:
        records.append(DnsRecord("spf", domain, "TXT", spec.spf.record(), False))
    records.append(DnsRecord("dmarc", f"_dmarc.{domain}", "TXT", _dmarc_record(spec), False))
    if spec.return_path:
        rp = spec.return_path
        for i, host in enumerate(spec.return_path_mx):
            records.append(DnsRecord("return_path_mx", rp, "MX", f"{10 * (i + 1)} {host}", False))
        if not spec.spf.empty:
            records.append(DnsRecord("return_path_spf", rp, "TXT", spec.spf.record(), False))
    for i, host in enumerate(spec.inbound_mx):
        records.append(DnsRecord("inbound_mx", domain, "MX", f"{10 * (i + 1)} {host}", False))
    return tuple(records)


# -- evaluation -------------------------------------------------------------------------------


def _host(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _is_spf(text: str) -> bool:
    lowered = text.strip().lower()
    return lowered == "v=spf1" or lowered.startswith("v=spf1 ")


def _spf_targets(
    terms: list[str],
) -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """Domains authorised through `include:`/`redirect=` and networks through `ip4:`/`ip6:`
    (only with the pass qualifier: `~include:` authorises nothing)."""
    domains: set[str] = set()
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for term in terms:
        lowered = term.lower()
        if lowered.startswith("+"):
            lowered = lowered[1:]
        elif lowered[:1] in ("-", "~", "?"):
            continue
        if lowered.startswith("include:"):
            domains.add(_host(lowered[8:]))
        elif lowered.startswith("redirect="):
            domains.add(_host(lowered[9:]))
        elif lowered.startswith(("ip4:", "ip6:")):
            try:
                networks.append(ipaddress.ip_network(lowered[4:], strict=False))
            except ValueError:
                continue
    return domains, networks


def _covered(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        wanted = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return False
    return any(
        wanted.version == net.version and wanted.subnet_of(net)  # type: ignore[arg-type]
        for net in networks
    )


def check_spf(
    records: list[str], policy: SpfPolicy
) -> tuple[Status, tuple[str, ...], str, str | None]:
    """Evaluate the TXT records of a name against `policy`: (status, SPF records found, detail,
    suggested record). Includes are not followed: the record must name what is configured."""
    spf = tuple(r for r in records if _is_spf(r))
    if not spf:
        return "missing", spf, "no SPF record (a TXT record starting with v=spf1)", None
    if len(spf) > 1:
        return (
            "mismatch",
            spf,
            f"{len(spf)} SPF records; RFC 7208 makes that a permanent error: merge them into one",
            None,
        )
    terms = spf[0].split()[1:]
    domains, networks = _spf_targets(terms)
    lacking = [f"include:{d}" for d in policy.includes if _host(d) not in domains]
    lacking += [f"ip4:{a}" for a in policy.ip4 if not _covered(a, networks)]
    lacking += [f"ip6:{a}" for a in policy.ip6 if not _covered(a, networks)]
    if not lacking:
        detail = "the SPF record authorises the configured senders"
        if any(t.lower() in ("all", "+all") for t in terms):
            detail += ", but it ends in +all, which authorises everybody: use ~all or -all"
        return "ok", spf, detail, None
    position = next(
        (i for i, t in enumerate(terms) if t.lower().lstrip("+-~?") == "all" or "=" in t),
        len(terms),
    )
    suggestion = " ".join(["v=spf1", *terms[:position], *lacking, *terms[position:]])
    return (
        "mismatch",
        spf,
        f"the SPF record does not authorise {', '.join(lacking)}",
        suggestion,
    )


def _dkim_key_bytes(k: str, p: str) -> bytes | None:
    """The public key in a comparable form (SPKI DER for RSA), None if unreadable."""
    try:
        raw = base64.b64decode("".join(p.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if k.lower() == "ed25519":
        return raw if len(raw) == 32 else None
    if k.lower() != "rsa":
        return None
    try:
        key = serialization.load_der_public_key(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(key, rsa.RSAPublicKey):
        return None
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _check_dkim(records: list[str], expected: str) -> tuple[Status, tuple[str, ...], str]:
    want = parse_tag_list(expected)
    want_key = _dkim_key_bytes(want.get("k", "rsa"), want.get("p", ""))
    keys = tuple(r for r in records if "p" in parse_tag_list(r))
    if not keys:
        return "missing", tuple(records), "no DKIM key record (v=DKIM1; k=...; p=...)"
    matching = []
    for text in keys:
        tags = parse_tag_list(text)
        if tags.get("v", "DKIM1") != "DKIM1":
            continue
        if want_key is not None and _dkim_key_bytes(tags.get("k", "rsa"), tags["p"]) == want_key:
            matching.append(text)
    if matching and len(keys) == 1:
        return "ok", keys, "the DKIM public key matches"
    if matching:
        return (
            "mismatch",
            keys,
            f"{len(keys)} DKIM key records at this name; receivers may use any: keep only ours",
        )
    if all(not parse_tag_list(t)["p"] for t in keys):
        return "mismatch", keys, "the published DKIM key is revoked (empty p=)"
    return "mismatch", keys, "the published DKIM key is not this domain's current key"


def _check_verification(records: list[str], expected: str) -> tuple[Status, tuple[str, ...], str]:
    ours = tuple(r for r in records if r.strip().lower().startswith(VERIFICATION_PREFIX))
    if any(r.strip() == expected for r in ours):
        return "ok", ours, "the verification record is published"
    if ours:
        return "mismatch", ours, "a verification record is published, but with another token"
    return "missing", ours, "no verification record"


def _check_dmarc(records: list[str]) -> tuple[Status, tuple[str, ...], str]:
    found = tuple(
        r for r in records if r.strip().lower().replace(" ", "").split(";")[0] == "v=dmarc1"
    )
    if not found:
        return "missing", found, "no DMARC record (suggested, not required)"
    if len(found) > 1:
        return "mismatch", found, f"{len(found)} DMARC records; receivers then ignore DMARC"
    policy = parse_tag_list(found[0]).get("p")
    if not policy:
        return "mismatch", found, "the DMARC record has no p= policy"
    return "ok", found, f"DMARC is published with policy p={policy}"


def _check_mx(records: list[tuple[int, str]], host: str) -> tuple[Status, tuple[str, ...], str]:
    found = tuple(f"{pref} {name}" for pref, name in records)
    if not records:
        return "missing", found, "no MX record"
    if any(_host(name) == _host(host) for _, name in records):
        return "ok", found, f"{_host(host)} is an MX of this name"
    return "mismatch", found, f"the MX records do not include {_host(host)}"


@dataclass(slots=True)
class _Lookups:
    """Each distinct query once, run concurrently; failures kept as DnsError values."""

    resolver: Resolver
    txt: dict[str, list[str] | DnsError] = field(default_factory=dict)
    mx: dict[str, list[tuple[int, str]] | DnsError] = field(default_factory=dict)

    async def run(self, records: tuple[DnsRecord, ...]) -> None:
        txt_names = sorted({r.name for r in records if r.type == "TXT"})
        mx_names = sorted({r.name for r in records if r.type == "MX"})

        async def txt(name: str) -> None:
            self.txt[name] = await _capture(self.resolver.txt, name)

        async def mx(name: str) -> None:
            self.mx[name] = await _capture(self.resolver.mx, name)

        await asyncio.gather(*(txt(n) for n in txt_names), *(mx(n) for n in mx_names))


_T = TypeVar("_T")


async def _capture(call: Callable[[str], Awaitable[list[_T]]], name: str) -> list[_T] | DnsError:
    try:
        return await call(name)
    except DnsError as exc:
        return exc


def _error(record: DnsRecord, exc: DnsError) -> RecordCheck:
    return RecordCheck(record, "error", (), f"DNS lookup failed: {exc}")


def _evaluate(record: DnsRecord, lookups: _Lookups, policy: SpfPolicy) -> RecordCheck:
    if record.type == "MX":
        mx_answer = lookups.mx[record.name]
        if isinstance(mx_answer, DnsError):
            return _error(record, mx_answer)
        host = record.value.split(" ", 1)[1]
        return RecordCheck(record, *_check_mx(mx_answer, host))
    texts = lookups.txt[record.name]
    if isinstance(texts, DnsError):
        return _error(record, texts)
    if record.kind == "verification":
        return RecordCheck(record, *_check_verification(texts, record.value))
    if record.kind == "dkim":
        return RecordCheck(record, *_check_dkim(texts, record.value))
    if record.kind == "dmarc":
        return RecordCheck(record, *_check_dmarc(texts))
    return RecordCheck(record, *check_spf(texts, policy))


async def check_domain(resolver: Resolver, spec: DomainSpec) -> DomainCheckResult:
    """Look up every expected record and say how each stands. Never raises for DNS failures:
    those records get status `error`."""
    records = expected_records(spec)
    lookups = _Lookups(resolver)
    await lookups.run(records)
    checks: list[RecordCheck] = []
    for record in records:
        checks.append(_evaluate(record, lookups, spec.spf))
    required = [c for c in checks if c.record.required]
    verified = any(c.record.kind == "dkim" for c in required) and all(
        c.status == "ok" for c in required
    )
    return DomainCheckResult(spec.domain, tuple(checks), verified)
