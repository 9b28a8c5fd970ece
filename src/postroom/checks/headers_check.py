"""The headers check of a message: how a receiving mail server would judge its authentication
(DKIM verified against DNS, SPF for the client that delivered it, DMARC alignment with From)
and whether its List-Unsubscribe, From, Date, Message-ID and address fields are sound.

Pure of I/O except DNS, which goes through the injected `Resolver` only (the configured
--resolver; a test's DNS server). Every lookup has a time bound; whatever the message holds,
a result comes back (bad input is a finding, never an exception).

SPF is judged for the client Postroom's own Received header names (its address and HELO, see
pipeline/received.py) and the envelope's MAIL FROM, as a receiver would judge that
connection: for mail captured straight from an application that is the application's host,
not the relay that will send it for real, and the result says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from postroom.checks import dkim_verify
from postroom.checks.dkim_verify import DkimVerdict, verify_signatures
from postroom.checks.field_checks import FieldFacts, check_fields
from postroom.checks.findings import LEVELS, Finding, Level
from postroom.checks.unsubscribe_check import check_unsubscribe
from postroom.dns import dmarc
from postroom.dns.resolver import Resolver
from postroom.dns.spf import SpfOutcome, check_host
from postroom.mime.header_warnings import HeaderWarning, header_warnings
from postroom.pipeline.headers import HeaderField, address_domain, split_message

__all__ = ["Connection", "HeadersCheck", "Limits", "check_headers"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    """Seconds each DNS part may take in all: SPF (at most 10 lookups, 2 void), the DKIM keys
    of all signatures, DMARC (at most 2 lookups)."""

    spf: float = 20.0
    dkim: float = 20.0
    dmarc: float = 10.0


@dataclass(frozen=True, slots=True)
class Connection:
    """What Postroom knew of the message's arrival: the client's address and HELO name ("" when
    unknown), the envelope sender ("" for the null sender) and when it was received."""

    client_ip: str
    helo: str
    mail_from: str
    received: datetime


@dataclass(slots=True)
class HeadersCheck:
    findings: list[Finding] = field(default_factory=list)
    dkim: list[DkimVerdict] = field(default_factory=list)
    spf: dict[str, Any] | None = None
    dmarc: dict[str, Any] | None = None
    warnings: tuple[HeaderWarning, ...] = ()

    def as_json(self) -> dict[str, Any]:
        order = {level: i for i, level in enumerate(LEVELS)}
        counts = {level.capitalize(): 0 for level in LEVELS}
        for finding in self.findings:
            counts[finding.level.capitalize()] += 1
        return {
            "Summary": counts,
            "Findings": [f.as_json() for f in sorted(self.findings, key=lambda f: order[f.level])],
            "DKIM": [v.as_json() for v in self.dkim],
            "SPF": self.spf,
            "DMARC": self.dmarc,
            "HeaderWarnings": [w.as_json() for w in self.warnings],
        }


def _dns_domain(text: str) -> str:
    name = text.strip().rstrip(".").lower()
    labels = name.split(".")
    ok = (
        0 < len(name) <= 253
        and name.isascii()
        and len(labels) >= 2
        and all(0 < len(label) <= 63 for label in labels)
        and all(c.isalnum() or c in "-_" for c in name.replace(".", ""))
    )
    return name if ok else ""


async def _dkim(
    raw: bytes,
    fields: Sequence[HeaderField],
    whole: bool,
    resolver: Resolver,
    limit: float,
    out: HeadersCheck,
) -> None:
    signatures = [f.value for f in fields if f.name == "dkim-signature"]
    if not signatures:
        out.findings.append(
            Finding(
                "warn",
                "dkim",
                "DKIM-Signature",
                "The message is not DKIM-signed: receivers cannot tie it to a domain, DMARC can "
                "pass only through SPF, and Gmail and Yahoo require DKIM from bulk senders.",
            )
        )
        return
    if not whole:
        out.findings.append(
            Finding(
                "info",
                "dkim",
                "DKIM-Signature",
                "The message is too big for the headers check to verify its DKIM signatures.",
            )
        )
        return
    try:
        out.dkim = await asyncio.wait_for(verify_signatures(raw, signatures, resolver), limit)
    except TimeoutError:
        out.findings.append(
            Finding(
                "warn",
                "dkim",
                "DKIM-Signature",
                f"Looking up the DKIM keys took more than {limit:g} s; not verified.",
            )
        )
        return
    if len(signatures) > dkim_verify.MAX_SIGNATURES:
        out.findings.append(
            Finding(
                "info",
                "dkim",
                "DKIM-Signature",
                f"The message has {len(signatures)} DKIM signatures; the first "
                f"{dkim_verify.MAX_SIGNATURES} were verified.",
            )
        )
    for verdict in out.dkim:
        who = f"DKIM signature of d={verdict.domain or '?'} (selector {verdict.selector or '?'})"
        if verdict.result == "pass":
            signed = ", ".join(dict.fromkeys(verdict.signed))
            out.findings.append(
                Finding("pass", "dkim", "DKIM-Signature", f"{who} verifies; it signs {signed}.")
            )
            if verdict.body_limit:
                out.findings.append(
                    Finding(
                        "warn",
                        "dkim",
                        "DKIM-Signature",
                        f"{who} has a body length limit (l=): anyone can append content "
                        "below the signed part and the signature still verifies.",
                    )
                )
        elif verdict.result == "temperror":
            out.findings.append(
                Finding("warn", "dkim", "DKIM-Signature", f"{who}: {verdict.reason}.")
            )
        else:
            out.findings.append(
                Finding("fail", "dkim", "DKIM-Signature", f"{who} fails: {verdict.reason}.")
            )


_SPF_LEVELS: dict[str, Level] = {
    "pass": "pass",
    "fail": "fail",
    "softfail": "warn",
    "neutral": "warn",
    "none": "warn",
    "permerror": "fail",
    "temperror": "warn",
}


async def _spf(
    connection: Connection, resolver: Resolver, limit: float, out: HeadersCheck
) -> tuple[str, str]:
    """(result, domain) of SPF for DMARC: ("none", "") when it could not be judged."""
    if not connection.client_ip:
        out.findings.append(
            Finding(
                "info",
                "spf",
                "Received",
                "SPF not judged: the address of the client that delivered the message is not "
                "known (the message does not start with Postroom's Received header).",
            )
        )
        return "none", ""
    if connection.mail_from:
        domain = _dns_domain(address_domain(connection.mail_from))
        identity, sender = "MAIL FROM", connection.mail_from
    else:
        domain = _dns_domain(connection.helo)
        identity, sender = "HELO", f"postmaster@{domain}"
    if not domain:
        what = connection.mail_from or connection.helo or "(none)"
        out.findings.append(
            Finding(
                "warn",
                "spf",
                "Return-Path",
                f"SPF not judged: the {identity} identity {what!r} has no domain to look up.",
            )
        )
        out.spf = {
            "Result": "none",
            "Domain": "",
            "Identity": identity,
            "ClientIP": connection.client_ip,
            "Helo": connection.helo,
            "Explanation": "no domain to look up",
        }
        return "none", ""
    try:
        outcome = await asyncio.wait_for(
            check_host(connection.client_ip, domain, sender, resolver, connection.helo),
            limit,
        )
    except TimeoutError:
        outcome = SpfOutcome("temperror", f"the lookups took more than {limit:g} s")
    out.spf = {
        "Result": outcome.result,
        "Domain": domain,
        "Identity": identity,
        "ClientIP": connection.client_ip,
        "Helo": connection.helo,
        "Explanation": outcome.explanation,
    }
    level = _SPF_LEVELS[outcome.result]
    out.findings.append(
        Finding(
            level,
            "spf",
            "Return-Path",
            f"SPF {outcome.result} for {domain} ({identity}) sent from {connection.client_ip}: "
            f"{outcome.explanation}.",
        )
    )
    return outcome.result, domain


async def _dmarc(
    from_domain: str, spf: tuple[str, str], resolver: Resolver, limit: float, out: HeadersCheck
) -> None:
    if not from_domain or not _dns_domain(from_domain):
        out.findings.append(
            Finding(
                "info",
                "dmarc",
                "From",
                "DMARC not judged: the message has no single From domain.",
            )
        )
        return
    domain = _dns_domain(from_domain)
    passed = [v.domain for v in out.dkim if v.result == "pass"]
    try:
        outcome = await asyncio.wait_for(dmarc.evaluate(domain, spf, passed, resolver), limit)
    except TimeoutError:
        outcome = dmarc.DmarcOutcome("temperror", f"the lookups took more than {limit:g} s")
    policy = outcome.policy
    aligned_dkim = [
        d for d in passed if policy is not None and dmarc.aligned(d, domain, policy.adkim)
    ]
    out.dmarc = {
        "Result": outcome.result,
        "Domain": domain,
        "PolicyDomain": policy.domain if policy else "",
        "Policy": policy.policy if policy else "",
        "AlignmentDKIM": "strict" if policy and policy.adkim == "s" else "relaxed",
        "AlignmentSPF": "strict" if policy and policy.aspf == "s" else "relaxed",
        "DKIMAligned": outcome.dkim_aligned,
        "SPFAligned": outcome.spf_aligned,
        "Explanation": outcome.explanation,
    }
    if outcome.result == "pass" and policy is not None:
        how = []
        if outcome.dkim_aligned:
            how.append(f"DKIM d={aligned_dkim[0]}")
        if outcome.spf_aligned:
            how.append(f"SPF {spf[1]}")
        out.findings.append(
            Finding(
                "pass",
                "dmarc",
                "From",
                f"DMARC pass for {domain}: {' and '.join(how)} aligned with From "
                f"(policy p={policy.policy} at _dmarc.{policy.domain}).",
            )
        )
    elif outcome.result == "fail" and policy is not None:
        action = {
            "none": "deliver it anyway (p=none) and report it",
            "quarantine": "put it in spam (p=quarantine)",
            "reject": "reject it (p=reject)",
        }[policy.policy]
        reasons = []
        if not passed:
            reasons.append("no DKIM signature verifies")
        else:
            reasons.append(f"DKIM d={', '.join(passed)} is not aligned with {domain}")
        if spf[0] != "pass":
            reasons.append(f"SPF is {spf[0]}")
        elif spf[1]:
            reasons.append(f"SPF domain {spf[1]} is not aligned with {domain}")
        out.findings.append(
            Finding(
                "fail",
                "dmarc",
                "From",
                f"DMARC fail for {domain} ({'; '.join(reasons)}): a receiver would {action}.",
            )
        )
    elif outcome.result == "none":
        out.findings.append(
            Finding(
                "warn",
                "dmarc",
                "From",
                f"{domain} publishes no DMARC policy (_dmarc.{domain} TXT); Gmail and Yahoo "
                "require one (p=none at least) from bulk senders.",
            )
        )
    else:
        out.findings.append(
            Finding("warn", "dmarc", "From", f"DMARC {outcome.result}: {outcome.explanation}.")
        )


def _fields(raw: bytes) -> list[HeaderField]:
    return split_message(raw).fields


def _warnings(fields: Sequence[HeaderField]) -> tuple[HeaderWarning, ...]:
    return header_warnings((f.name, f.value.decode("ascii", "surrogateescape")) for f in fields)


async def check_headers(
    raw: bytes,
    connection: Connection,
    resolver: Resolver,
    *,
    whole: bool = True,
    limits: Limits | None = None,
) -> HeadersCheck:
    """Check `raw` (CRLF line endings; only its header section when not `whole`, the message
    being too big to verify DKIM on)."""
    limits = limits or Limits()
    out = HeadersCheck()
    fields = await asyncio.to_thread(_fields, raw)
    out.warnings = await asyncio.to_thread(_warnings, fields)
    facts = FieldFacts("")
    spf: tuple[str, str] = ("none", "")

    async def fields_part() -> None:
        nonlocal facts
        facts = await asyncio.to_thread(
            check_fields, fields, connection.received, out.warnings, out.findings
        )

    async def dkim_part() -> None:
        await _dkim(raw, fields, whole, resolver, limits.dkim, out)

    async def spf_part() -> None:
        nonlocal spf
        spf = await _spf(connection, resolver, limits.spf, out)

    async def dmarc_part() -> None:
        await _dmarc(facts.from_domain, spf, resolver, limits.dmarc, out)

    async def unsubscribe_part() -> None:
        check_unsubscribe(fields, out.dkim, out.findings)

    parts = [
        ("header fields", "structure", fields_part),
        ("DKIM", "dkim", dkim_part),
        ("SPF", "spf", spf_part),
        ("DMARC", "dmarc", dmarc_part),
        ("List-Unsubscribe", "list-unsubscribe", unsubscribe_part),
    ]
    for title, check, part in parts:
        try:
            await part()
        except Exception as exc:  # a bug must cost one check, not the answer
            log.exception("headers check: the %s check failed", title)
            out.findings.append(
                Finding(
                    "warn", check, "", f"The {title} check could not run ({type(exc).__name__})."
                )
            )
    return out
