"""Validation of what people type: project slugs, names, quotas, usernames, networks,
addresses, scopes. Each function returns the normalised value or raises InvalidInput naming
the field, with a sentence saying what is accepted."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from postroom.core.errors import InvalidInput
from postroom.core.platform import ProjectMode, Scope, scopes_from
from postroom.dns.dkim import normalize_domain

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_USERNAME = re.compile(r"[A-Za-z0-9._@+=-]{1,255}")
_ADMIN = re.compile(r"[A-Za-z0-9._@-]{1,100}")
_LOCAL_PART = re.compile(r"[^\s@<>()\[\]\\,;:\"\x00-\x1f\x7f]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_QUOTA = 2**31 - 1
MAX_NAME = 200
MIN_ADMIN_PASSWORD = 8


def project_id(value: object) -> str:
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        raise InvalidInput(
            f"project id {value!r}: 1-63 lower-case letters, digits and '-', "
            "starting and ending with a letter or digit",
            "id",
        )
    return value


def display_name(value: object, field: str = "name") -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field)
    text = value.strip()
    if not text:
        raise InvalidInput(f"{field} is empty", field)
    if len(text) > MAX_NAME:
        raise InvalidInput(f"{field} is longer than {MAX_NAME} characters", field)
    if _CONTROL.search(text):
        raise InvalidInput(f"{field} contains control characters", field)
    return text


MAX_REASON = 500


def suspend_reason(value: object) -> str:
    """An optional sentence saying why a project is suspended (shown to its senders)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("reason must be a string (or null)", "reason")
    text = value.strip()
    if len(text) > MAX_REASON:
        raise InvalidInput(f"reason is longer than {MAX_REASON} characters", "reason")
    if _CONTROL.search(text):
        raise InvalidInput("reason contains control characters", "reason")
    return text


def mode(value: object) -> ProjectMode:
    if value == "capture":
        return "capture"
    if value == "live":
        return "live"
    raise InvalidInput(f"mode {value!r}: use capture or live", "mode")


def quota(value: object, field: str) -> int | None:
    """A positive limit, or None for no limit (None and 0 both mean no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be a whole number (0 or null: no limit)", field)
    if value < 0 or value > MAX_QUOTA:
        raise InvalidInput(f"{field} must be from 0 (no limit) to {MAX_QUOTA}", field)
    return value or None


def smtp_username(value: object) -> str:
    if not isinstance(value, str) or not _USERNAME.fullmatch(value):
        raise InvalidInput("username: 1-255 letters, digits and . _ @ + = -", "username")
    return value


def admin_username(value: object) -> str:
    if not isinstance(value, str) or not _ADMIN.fullmatch(value):
        raise InvalidInput("username: 1-100 letters, digits and . _ @ -", "username")
    return value


def admin_password(value: object) -> str:
    if not isinstance(value, str) or len(value) < MIN_ADMIN_PASSWORD:
        raise InvalidInput(
            f"the password must be at least {MIN_ADMIN_PASSWORD} characters", "password"
        )
    return value


def network(value: object) -> str:
    """A CIDR network (a bare address is one host); host bits are cleared."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("network: give a CIDR network such as 192.0.2.0/24", "network")
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise InvalidInput(
            f"network {value!r} is not an IP address or CIDR network (e.g. 192.0.2.0/24)",
            "network",
        ) from None
    if net.prefixlen == 0:
        raise InvalidInput(
            f"network {value!r} is every address: it would let anybody send as the project",
            "network",
        )
    return str(net)


def email_address(value: object, field: str = "address") -> str:
    """`local@domain`, lower-cased, the domain in A-labels."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field)
    local, at, domain = value.strip().rpartition("@")
    if not at or not _LOCAL_PART.fullmatch(local):
        raise InvalidInput(f"{value!r} is not an email address (local@domain)", field)
    try:
        host = normalize_domain(domain)
    except InvalidInput:
        raise InvalidInput(f"{value!r} is not an email address (local@domain)", field) from None
    return f"{local.lower()}@{host}"


def sender_patterns(values: Iterable[object]) -> tuple[str, ...]:
    """allowed_from entries: addresses (`a@example.com`) or domains (`example.com`)."""
    out: list[str] = []
    for value in values:
        if isinstance(value, str) and "@" in value:
            entry = email_address(value, "allowed_from")
        elif isinstance(value, str):
            try:
                entry = normalize_domain(value)
            except InvalidInput:
                raise InvalidInput(
                    f"allowed_from {value!r}: give a domain or an email address", "allowed_from"
                ) from None
        else:
            raise InvalidInput("allowed_from must be a list of strings", "allowed_from")
        if entry not in out:
            out.append(entry)
    return tuple(out)


def scopes(values: Iterable[object]) -> tuple[Scope, ...]:
    items = list(values)
    if not items:
        raise InvalidInput("give at least one scope: send, read or manage", "scopes")
    if not all(isinstance(v, str) for v in items):
        raise InvalidInput("scopes must be a list of strings", "scopes")
    unique = list(dict.fromkeys(str(v) for v in items))
    return scopes_from(unique)
