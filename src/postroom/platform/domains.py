"""Sending domains: the DNS records to publish and how each stood at the last check.

`DomainSettings` says what this server asks domains to publish (its hostname for MX, the SPF
include, the return-path label). `report(domain, settings)` combines what to publish with the
stored result of the last check; `check_result_json` stores a check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from postroom.core.errors import InvalidInput
from postroom.core.platform import DkimAlgorithm, DkimKey, Domain
from postroom.dns.dkim import (
    PrivateKey,
    dated_selector,
    dns_record,
    dns_record_name,
    dump_private_key,
    generate_ed25519,
    generate_rsa,
    key_type,
    load_private_key,
)
from postroom.dns.domain_checks import (
    DkimPublication,
    DnsRecord,
    DomainCheckResult,
    DomainSpec,
    SpfPolicy,
    expected_records,
    return_path_domain,
)

__all__ = [
    "DomainReport",
    "DomainSettings",
    "KeyRecord",
    "RecordStatus",
    "check_result_json",
    "domain_spec",
    "key_record",
    "make_key",
    "report",
]

RecordState = Literal["ok", "missing", "mismatch", "error", "unchecked"]


@dataclass(frozen=True, slots=True)
class DomainSettings:
    """What the server asks each sending domain to publish.

    `hostname`: this server's name (MX target of the return-path and inbound mail);
    `spf_include`: the domain whose SPF record lists this server's addresses (default
    `_spf.<hostname>`); `retire_grace`: how long a replaced DKIM key stays published and
    valid after the new one is activated.
    """

    hostname: str
    spf_include: str = ""
    return_path_label: str = "rp"
    dmarc_rua: str | None = None
    retire_grace: timedelta = timedelta(days=7)
    rsa_bits: int = 2048

    @property
    def spf(self) -> SpfPolicy:
        include = self.spf_include or f"_spf.{self.hostname.strip().rstrip('.').lower()}"
        return SpfPolicy(includes=(include,))


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A DKIM key as shown to people: never its private half."""

    selector: str
    algorithm: DkimAlgorithm
    status: str
    name: str  # <selector>._domainkey.<domain>
    value: str  # the TXT record text
    created: datetime
    activated: datetime | None
    retire_after: datetime | None


@dataclass(frozen=True, slots=True)
class RecordStatus:
    """A record to publish and how it stood at the last check ("unchecked" before any)."""

    kind: str
    name: str
    type: str
    value: str
    required: bool
    status: RecordState
    detail: str
    found: tuple[str, ...] = ()
    suggestion: str | None = None
    selector: str | None = None  # DKIM records: the key's selector
    key_status: str | None = None  # DKIM records: pending, active or retiring


@dataclass(frozen=True, slots=True)
class DomainReport:
    domain: Domain
    records: tuple[RecordStatus, ...]
    keys: tuple[KeyRecord, ...]


def key_record(domain: str, key: DkimKey) -> KeyRecord:
    return KeyRecord(
        selector=key.selector,
        algorithm=key.algorithm,
        status=key.status,
        name=dns_record_name(key.selector, domain),
        value=key.public_record,
        created=key.created,
        activated=key.activated,
        retire_after=key.retire_after,
    )


def make_key(
    algorithm: str | None,
    private_key: str | None,
    *,
    selector: str | None,
    taken: set[str],
    domain: str,
    now: datetime,
    rsa_bits: int,
    status: Literal["pending", "active"],
) -> DkimKey:
    """A new DKIM key: generated (`algorithm` rsa or ed25519) or loaded from `private_key`
    (PEM, base64 DER or an Ed25519 seed). The selector is `selector` or a dated one
    (`pr20261129`, then `pr20261129b`... when the day's is taken)."""
    key: PrivateKey
    if private_key:
        key = load_private_key(private_key)
        if algorithm and algorithm != key_type(key):
            raise InvalidInput(
                f"the private key is {key_type(key)}, not {algorithm}", field="algorithm"
            )
    elif algorithm in (None, "", "rsa"):
        key = generate_rsa(rsa_bits)
    elif algorithm == "ed25519":
        key = generate_ed25519()
    else:
        raise InvalidInput(f"algorithm {algorithm!r}: use rsa or ed25519", field="algorithm")
    if selector:
        dns_record_name(selector, domain)  # validates
        chosen = selector.strip().lower()
        if chosen in taken:
            raise InvalidInput(f"the domain already has a key with selector {chosen}", "selector")
    else:
        base = dated_selector(now)
        chosen = base
        for suffix in "bcdefghijklmnopqrstuvwxyz":
            if chosen not in taken:
                break
            chosen = dated_selector(now, suffix=suffix)
        else:
            raise InvalidInput("too many keys made today: give --selector", "selector")
    return DkimKey(
        selector=chosen,
        algorithm=key_type(key),
        private_pem=dump_private_key(key).decode("ascii"),
        public_record=dns_record(key),
        status=status,
        created=now,
        activated=now if status == "active" else None,
    )


def domain_spec(domain: Domain, settings: DomainSettings, keys: tuple[DkimKey, ...]) -> DomainSpec:
    hostname = settings.hostname.strip().rstrip(".").lower()
    return DomainSpec(
        domain=domain.name,
        verification_token=domain.verification_token,
        dkim=tuple(DkimPublication(k.selector, k.public_record) for k in keys),
        spf=settings.spf,
        return_path=return_path_domain(domain.name, settings.return_path_label),
        return_path_mx=(hostname,),
        inbound_mx=(hostname,),
        dmarc_rua=settings.dmarc_rua,
    )


def published_keys(domain: Domain) -> tuple[DkimKey, ...]:
    """Keys whose record should be in DNS: active, pending (rotation) and retiring."""
    return tuple(k for k in domain.dkim_keys if k.status != "retired")


def _record_key(kind: str, name: str, type_: str, value: str) -> str:
    # DKIM records are told apart by name (selector); the others by kind and name.
    return f"{kind}|{name}|{type_}|{value if type_ == 'MX' else ''}"


def check_result_json(result: DomainCheckResult, verified: bool, when: datetime) -> str:
    return json.dumps(
        {
            "checked": when.isoformat(),
            "verified": verified,
            "records": [
                {
                    "kind": c.record.kind,
                    "name": c.record.name,
                    "type": c.record.type,
                    "value": c.record.value,
                    "status": c.status,
                    "detail": c.detail,
                    "found": list(c.found),
                    "suggestion": c.suggestion,
                }
                for c in result.checks
            ],
        }
    )


def _stored_checks(domain: Domain) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(domain.check_json or "{}")
    except ValueError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for item in data.get("records", []) if isinstance(data, dict) else []:
        if isinstance(item, dict):
            key = _record_key(
                str(item.get("kind")),
                str(item.get("name")),
                str(item.get("type")),
                str(item.get("value")),
            )
            out[key] = item
    return out


def _status(item: dict[str, Any] | None, record: DnsRecord) -> tuple[RecordState, str]:
    if item is None:
        return "unchecked", "not checked yet: run verify"
    status = item.get("status")
    if record.kind == "dkim" and item.get("value") != record.value:
        return "unchecked", "not checked since this key was made: run verify"
    if status in ("ok", "missing", "mismatch", "error"):
        return status, str(item.get("detail", ""))
    return "unchecked", "not checked yet: run verify"


def report(domain: Domain, settings: DomainSettings) -> DomainReport:
    keys = published_keys(domain)
    by_selector = {k.selector: k for k in keys}
    stored = _stored_checks(domain)
    rows: list[RecordStatus] = []
    for record in expected_records(domain_spec(domain, settings, keys)):
        item = stored.get(_record_key(record.kind, record.name, record.type, record.value))
        status, detail = _status(item, record)
        selector = key_status = None
        required = record.required
        if record.kind == "dkim":
            selector = record.name.split("._domainkey.", 1)[0]
            key = by_selector.get(selector)
            key_status = key.status if key else None
            required = key_status == "active"  # only the signing key decides verification
            if key_status == "retiring" and key is not None and key.retire_after is not None:
                detail += f" (replaced: keep it published until {key.retire_after:%Y-%m-%d})"
            elif key_status == "pending":
                detail += " (rotation: publish it, then activate this selector)"
        rows.append(
            RecordStatus(
                kind=record.kind,
                name=record.name,
                type=record.type,
                value=record.value,
                required=required,
                status=status,
                detail=detail,
                found=tuple(item.get("found", ())) if item else (),
                suggestion=item.get("suggestion") if item else None,
                selector=selector,
                key_status=key_status,
            )
        )
    return DomainReport(
        domain=domain,
        records=tuple(rows),
        keys=tuple(key_record(domain.name, k) for k in domain.dkim_keys),
    )
