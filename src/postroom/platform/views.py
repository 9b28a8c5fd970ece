"""Platform entities as JSON objects, for the CLI's --json and the management API.

These are the only shapes that leave the service: digests, password hashes and DKIM private
keys are never part of them. Secrets appear only in the `issued_*` views, which the create
commands and endpoints return once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from postroom.core.platform import (
    AddressIdentity,
    AdminUser,
    ApiKey,
    Domain,
    IpCredential,
    Project,
    SmtpCredential,
)
from postroom.platform.domains import DomainReport, KeyRecord, RecordStatus, key_record
from postroom.platform.service import IssuedApiKey, IssuedSmtpCredential, Usage

Json = dict[str, Any]


def when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def project(p: Project) -> Json:
    return {
        "id": p.id,
        "name": p.name,
        "mode": p.mode,
        "daily_quota": p.daily_quota,
        "rate_limit": p.rate_limit,
        "created": when(p.created),
        "suspended": when(p.suspended),
        "suspend_reason": p.suspend_reason or None,
    }


def usage(project_id: str, u: Usage) -> Json:
    return {
        "project": project_id,
        "sent_24h": u.sent_24h,
        "daily_quota": u.daily_quota,
        "rate_limit": u.rate_limit,
        "remaining_24h": None if u.daily_quota is None else max(0, u.daily_quota - u.sent_24h),
    }


def smtp_credential(c: SmtpCredential) -> Json:
    return {
        "id": c.id,
        "project": c.project_id,
        "username": c.username,
        "allowed_from": list(c.allowed_from),
        "created": when(c.created),
        "last_used": when(c.last_used),
    }


def issued_smtp_credential(issued: IssuedSmtpCredential) -> Json:
    """The create response: the only time the password is shown."""
    return {**smtp_credential(issued.credential), "password": issued.password}


def ip_credential(c: IpCredential) -> Json:
    return {"id": c.id, "project": c.project_id, "network": c.network, "created": when(c.created)}


def api_key(k: ApiKey) -> Json:
    return {
        "id": k.id,
        "project": k.project_id,
        "name": k.name,
        "scopes": list(k.scopes),
        "created": when(k.created),
        "last_used": when(k.last_used),
    }


def issued_api_key(issued: IssuedApiKey) -> Json:
    """The create response: the only time the token is shown."""
    return {**api_key(issued.key), "token": issued.token}


def admin(u: AdminUser) -> Json:
    return {"id": u.id, "username": u.username, "created": when(u.created)}


def address_identity(a: AddressIdentity) -> Json:
    """An address identity: `status` pending (a verification mail was sent; `expires` says
    until when its link works) or verified. The token is never shown."""
    return {
        "project": a.project_id,
        "address": a.address,
        "status": a.status,
        "created": when(a.created),
        "verified_at": when(a.verified_at),
        "last_mail": when(a.last_mail),
        "expires": when(a.token_expires) if not a.verified else None,
    }


def dkim_key(k: KeyRecord) -> Json:
    return {
        "selector": k.selector,
        "algorithm": k.algorithm,
        "status": k.status,
        "name": k.name,
        "type": "TXT",
        "value": k.value,
        "created": when(k.created),
        "activated": when(k.activated),
        "retire_after": when(k.retire_after),
    }


def record(r: RecordStatus) -> Json:
    return {
        "kind": r.kind,
        "name": r.name,
        "type": r.type,
        "value": r.value,
        "required": r.required,
        "status": r.status,
        "detail": r.detail,
        "found": list(r.found),
        "suggestion": r.suggestion,
        "selector": r.selector,
        "key_status": r.key_status,
    }


def domain(d: Domain) -> Json:
    return {
        "id": d.id,
        "project": d.project_id,
        "name": d.name,
        "verified": d.verified,
        "verified_at": when(d.verified_at),
        "last_checked": when(d.last_checked),
        "created": when(d.created),
        "dkim_keys": [dkim_key(key_record(d.name, k)) for k in d.dkim_keys],
    }


def domain_report(rep: DomainReport) -> Json:
    """A domain with the records to publish and how each stood at the last check."""
    return {**domain(rep.domain), "records": [record(r) for r in rep.records]}
