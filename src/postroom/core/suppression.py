"""The suppression list's vocabulary: who must not be mailed, where, why, until when.

An entry belongs to one project, or to the whole account (`ACCOUNT`, every project); its
reason is `bounce` (a hard bounce, or soft ones past the policy), `complaint`, `manual` or
`unsubscribe`. Addresses are compared case-insensitively (`address_key`). An entry may expire;
an expired entry no longer suppresses anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias, get_args

from postroom.core.errors import InvalidInput

SuppressionReason: TypeAlias = Literal["bounce", "complaint", "manual", "unsubscribe"]
REASONS: tuple[SuppressionReason, ...] = get_args(SuppressionReason)

# The scope of account-wide entries (project names never contain "*").
ACCOUNT = "*"
MAX_ADDRESS = 320
MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Suppression:
    """One entry. `event_id` is the event that caused it (a bounce or complaint), if any;
    `detail` says more (the bounce's reason and status, or a note)."""

    scope: str  # a project id, or ACCOUNT
    address: str
    reason: SuppressionReason
    created: datetime
    expires: datetime | None = None
    event_id: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SuppressionQuery:
    """Which entries of a scope: `search` is a case-insensitive substring of the address,
    `after` the cursor (the address key to start after), at most `limit`."""

    search: str | None = None
    reason: SuppressionReason | None = None
    after: str | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class SuppressionPage:
    entries: tuple[Suppression, ...]
    next: str | None  # the cursor of the next page, None at the end


def address_key(address: str) -> str:
    """The lower-cased address entries are compared by."""
    return address.strip().lower()


def check_address(address: object, field: str = "address") -> str:
    """A plausible mail address (local@domain, no spaces or controls, at most 320 octets),
    stripped; InvalidInput naming `field` otherwise."""
    if not isinstance(address, str):
        raise InvalidInput(f"{field} must be a string", field)
    value = address.strip()
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or ("." not in domain and not domain.startswith("["))
        or len(value.encode("utf-8")) > MAX_ADDRESS
        or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value)
        or "<" in value
        or ">" in value
    ):
        raise InvalidInput(f"{field} must be a mail address such as user@example.com", field)
    return value


def check_reason(reason: object, field: str = "reason") -> SuppressionReason:
    if reason not in REASONS:
        raise InvalidInput(f"{field} must be one of {', '.join(REASONS)}", field)
    return reason
