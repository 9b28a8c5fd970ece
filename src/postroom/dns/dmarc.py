"""DMARC evaluation (RFC 7489) as a receiver judges a message, through the injected resolver.

`evaluate(from_domain, spf, dkim, resolver)` finds the policy (`_dmarc.<From domain>`, else
`_dmarc.<organizational domain>` with its `sp=`), checks identifier alignment of SPF (the
MAIL FROM domain, when SPF passed) and of DKIM (each `d=` whose signature verified) in the
policy's relaxed or strict mode, and returns pass or fail with the policy a receiver would
apply. Organizational domains come from the Public Suffix List shipped with the
`publicsuffixlist` package (no network).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from publicsuffixlist import PublicSuffixList

from postroom.dns.resolver import DnsError, Resolver

DmarcResult = Literal["pass", "fail", "none", "temperror", "permerror"]


@dataclass(frozen=True, slots=True)
class DmarcPolicy:
    domain: str  # where the record was found
    policy: str  # none, quarantine, reject (p=, or sp= for a subdomain)
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100
    rua: str = ""


@dataclass(frozen=True, slots=True)
class DmarcOutcome:
    result: DmarcResult
    explanation: str
    policy: DmarcPolicy | None = None
    spf_aligned: bool = False
    dkim_aligned: bool = False


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    name = domain.rstrip(".").lower()
    return _psl().privatesuffix(name) or name


def aligned(a: str, b: str, mode: str) -> bool:
    a, b = a.rstrip(".").lower(), b.rstrip(".").lower()
    if mode == "s":
        return a == b
    return organizational_domain(a) == organizational_domain(b)


def parse_record(text: str, domain: str, subdomain: bool) -> DmarcPolicy | None:
    """The policy in one TXT record, or None when it is not a valid DMARC record."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, eq, value = part.strip().partition("=")
        if eq:
            tags.setdefault(name.strip().lower(), value.strip())
    if tags.get("v") != "DMARC1" or tags.get("p", "").lower() not in (
        "none",
        "quarantine",
        "reject",
    ):
        return None
    policy = tags["p"].lower()
    if subdomain and tags.get("sp", "").lower() in ("none", "quarantine", "reject"):
        policy = tags["sp"].lower()
    pct_text = tags.get("pct", "100")
    pct = int(pct_text) if pct_text.isdigit() and int(pct_text) <= 100 else 100
    return DmarcPolicy(
        domain,
        policy,
        "s" if tags.get("adkim", "r").lower() == "s" else "r",
        "s" if tags.get("aspf", "r").lower() == "s" else "r",
        pct,
        tags.get("rua", ""),
    )


async def find_policy(from_domain: str, resolver: Resolver) -> DmarcPolicy | None:
    """The policy for `from_domain` (RFC 7489 §6.6.3). Raises DnsError."""
    domain = from_domain.rstrip(".").lower()
    candidates = [(domain, False)]
    organization = organizational_domain(domain)
    if organization != domain:
        candidates.append((organization, True))
    for name, subdomain in candidates:
        records = [t for t in await resolver.txt(f"_dmarc.{name}") if t.startswith("v=DMARC1")]
        if len(records) == 1:
            return parse_record(records[0], name, subdomain)
    return None


async def evaluate(
    from_domain: str,
    spf: tuple[str, str],
    dkim_pass_domains: Sequence[str],
    resolver: Resolver,
) -> DmarcOutcome:
    """`spf` is (result, MAIL FROM domain); `dkim_pass_domains` the d= of verified signatures."""
    try:
        policy = await find_policy(from_domain, resolver)
    except DnsError as exc:
        return DmarcOutcome("temperror", str(exc))
    if policy is None:
        return DmarcOutcome("none", f"{from_domain} publishes no DMARC policy")
    spf_result, spf_domain = spf
    spf_ok = spf_result == "pass" and aligned(spf_domain, from_domain, policy.aspf)
    dkim_ok = any(aligned(d, from_domain, policy.adkim) for d in dkim_pass_domains)
    if spf_ok or dkim_ok:
        which = " and ".join(n for n, ok in (("SPF", spf_ok), ("DKIM", dkim_ok)) if ok)
        return DmarcOutcome("pass", f"{which} aligned with {from_domain}", policy, spf_ok, dkim_ok)
    return DmarcOutcome(
        "fail",
        f"neither SPF nor DKIM aligned with {from_domain} (policy {policy.policy})",
        policy,
    )
