"""SMTP TLS Reporting (RFC 8460): what TLS our deliveries got, per policy domain and day.

A domain that wants reports publishes `_smtp._tls.<domain> TXT "v=TLSRPTv1; rua=mailto:...`.
For mail to such a domain every new connection's TLS outcome is counted (`TlsReporting.record`):
a success, or a failure with its RFC 8460 result type (`starttls-not-supported`,
`certificate-host-mismatch`, `certificate-expired`, `certificate-not-trusted`,
`validation-failure`, and for MTA-STS `sts-policy-fetch-error`, `sts-policy-invalid`,
`sts-webpki-invalid`), with the policy in force (`sts` and its id, or `no-policy-found`), the
MX host, our address and the receiver's. Counts gather in memory and are added to the database
by `flush()` (every minute, and when delivery stops), so the hot path writes nothing; a crash
loses at most a minute of counts, which a statistical report can bear.

`build_report()` turns one domain's counts of one UTC day into the report's JSON (RFC 8460 §4).
Sending the reports to the `rua` addresses is not done yet: the API serves them
(`GET /api/v2/tls-reports`, README).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from postroom.core.clock import Clock
from postroom.core.tls_reports import SUCCESS, Session
from postroom.delivery.mta_sts import Policy
from postroom.dns.resolver import DnsError, Resolver

log = logging.getLogger("postroom.delivery.tls_reports")


def parse_tlsrpt(texts: list[str]) -> tuple[str, ...] | None:
    """The `rua` URIs of the one valid `v=TLSRPTv1` record (RFC 8460 §3), else None."""
    candidates = [t for t in texts if re.match(r"v\s*=\s*TLSRPTv1\s*(;|$)", t)]
    if len(candidates) != 1:
        return None
    for item in candidates[0].split(";")[1:]:
        key, eq, value = item.partition("=")
        if eq and key.strip() == "rua":
            uris = tuple(u.strip() for u in value.split(",") if u.strip())
            if uris and all(u.startswith(("mailto:", "https:")) for u in uris):
                return uris
            return None
    return None


class CountStore(Protocol):
    """Where counts are added up (storage/tls_reports.py)."""

    def add_counts(
        self, counts: list[tuple[Session, int]], rua: dict[str, tuple[str, ...]]
    ) -> None: ...


class TlsReporting:
    """Counts TLS outcomes for domains that publish a TLS-RPT record."""

    def __init__(
        self, resolver: Resolver, store: CountStore, clock: Clock, *, recheck: float = 3600.0
    ) -> None:
        self._resolver = resolver
        self._store = store
        self._clock = clock
        self.recheck = recheck
        self._rua: dict[str, tuple[float, tuple[str, ...] | None]] = {}
        self._counts: Counter[Session] = Counter()
        self._seen_rua: dict[str, tuple[str, ...]] = {}
        self._flushing = asyncio.Lock()

    async def wanted(self, domain: str) -> bool:
        """Whether `domain` publishes a TLS-RPT record (looked up at most every `recheck` s)."""
        now = self._clock.monotonic()
        known = self._rua.get(domain)
        if known is None or now - known[0] >= self.recheck:
            try:
                rua = parse_tlsrpt(await self._resolver.txt(f"_smtp._tls.{domain}"))
            except DnsError:
                rua = known[1] if known is not None else None
            if len(self._rua) > 100_000:
                self._rua.clear()
            known = (now, rua)
            self._rua[domain] = known
        return known[1] is not None

    def record(
        self,
        domain: str,
        policy: Policy | None,
        result_type: str,
        *,
        mx_host: str = "",
        sending_ip: str = "",
        receiving_ip: str = "",
        policy_error: bool = False,
    ) -> None:
        """Count one session to `domain` (call only when `wanted(domain)` said so)."""
        known = self._rua.get(domain)
        if known is None or known[1] is None:
            return
        self._seen_rua[domain] = known[1]
        day = self._clock.now().astimezone(UTC).date().isoformat()
        sts = policy is not None or policy_error
        key = Session(
            day,
            domain,
            "sts" if sts else "no-policy-found",
            policy.id if policy is not None else "",
            mx_host,
            sending_ip,
            receiving_ip,
            result_type,
        )
        self._counts[key] += 1

    async def flush(self) -> int:
        """Add the counts gathered so far to the database; how many keys were written."""
        async with self._flushing:
            counts, self._counts = self._counts, Counter()
            rua, self._seen_rua = self._seen_rua, {}
            if not counts:
                return 0
            try:
                await asyncio.to_thread(self._store.add_counts, list(counts.items()), rua)
            except Exception:
                log.exception("storing TLS report counts failed; they are kept for the next try")
                self._counts.update(counts)
                for domain, uris in rua.items():
                    self._seen_rua.setdefault(domain, uris)
                return 0
            return len(counts)


def build_report(
    domain: str,
    day: date,
    rows: list[tuple[Session, int]],
    policy: Policy | None,
    *,
    organization: str,
    contact: str,
    report_id: str,
) -> dict[str, Any]:
    """The RFC 8460 report (§4.4) of `domain`'s sessions on `day` (UTC). `policy` is the cached
    MTA-STS policy, whose text goes in `policy-string` when its id is the one counted."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    groups: dict[tuple[str, str], list[tuple[Session, int]]] = {}
    for session, count in rows:
        if session.domain == domain and session.day == day.isoformat():
            groups.setdefault((session.policy_type, session.policy_id), []).append((session, count))
    policies = []
    for (policy_type, policy_id), members in sorted(groups.items()):
        described: dict[str, Any] = {"policy-type": policy_type, "policy-domain": domain}
        if policy_type == "sts" and policy is not None and policy.id == policy_id:
            described["policy-string"] = policy.lines()
            described["mx-host"] = list(policy.mx)
        successes = sum(c for s, c in members if s.result_type == SUCCESS)
        failures: Counter[tuple[str, str, str, str]] = Counter()
        for session, count in members:
            if session.result_type != SUCCESS:
                failures[
                    (
                        session.result_type,
                        session.sending_ip,
                        session.receiving_ip,
                        session.mx_host,
                    )
                ] += count
        details = []
        for (result, sending, receiving, mx), count in sorted(failures.items()):
            detail: dict[str, Any] = {"result-type": result}
            if sending:
                detail["sending-mta-ip"] = sending
            if receiving:
                detail["receiving-ip"] = receiving
            if mx:
                detail["receiving-mx-hostname"] = mx
            detail["failed-session-count"] = count
            details.append(detail)
        entry: dict[str, Any] = {
            "policy": described,
            "summary": {
                "total-successful-session-count": successes,
                "total-failure-session-count": sum(failures.values()),
            },
        }
        if details:
            entry["failure-details"] = details
        policies.append(entry)
    return {
        "organization-name": organization,
        "date-range": {
            "start-datetime": start.isoformat().replace("+00:00", "Z"),
            "end-datetime": (end - timedelta(seconds=1)).isoformat().replace("+00:00", "Z"),
        },
        "contact-info": contact,
        "report-id": report_id,
        "policies": policies,
    }
