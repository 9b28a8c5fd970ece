"""Platform entities (projects, credentials, API keys, domains, admin users) and their port.

A project is the unit of tenancy: it owns credentials, API keys, domains, quotas and messages.
Its `id` is a stable slug ("default", "acme-prod") used as `project` on every message.
Secrets are never held here in clear: passwords and keys appear only as digests or hashes
(core/secrets.py); DKIM private keys are stored PEM for signing but never leave the service
layer through the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from postroom.core.errors import InvalidInput

ProjectMode = Literal["capture", "live"]
Scope = Literal["send", "read", "manage"]
DkimAlgorithm = Literal["rsa", "ed25519"]
DkimStatus = Literal["pending", "active", "retiring", "retired"]
AddressStatus = Literal["pending", "verified"]

DEFAULT_PROJECT = "default"
# Where Postroom's own mail (address verification) is stored and queued. Not a valid project
# id (rules.project_id), so no project, key or admin page can ever list or read it.
SYSTEM_PROJECT = "_system"


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    mode: ProjectMode
    created: datetime
    daily_quota: int | None = None  # messages (per recipient) per rolling 24 h; None = no limit
    rate_limit: int | None = None  # messages (per recipient) per second; None = no limit
    # Set by the reputation guard (reputation/guard.py) when it paused the project's sending;
    # None while it may send. Only an admin resumes it.
    paused: datetime | None = None
    pause_reason: str = ""
    # Set by an admin (PlatformService.suspend_project) to refuse every message the project
    # submits, whatever its mode, until an admin resumes it; None while it may send.
    suspended: datetime | None = None
    suspend_reason: str = ""


@dataclass(frozen=True, slots=True)
class SmtpCredential:
    id: str
    project_id: str
    username: str
    secret_digest: str  # SHA-256 of the generated password (core/secrets.secret_digest)
    allowed_from: tuple[str, ...]  # empty = any verified identity; else domains or addresses
    created: datetime
    last_used: datetime | None = None


@dataclass(frozen=True, slots=True)
class IpCredential:
    id: str
    project_id: str
    network: str  # CIDR, e.g. "10.0.0.0/8" or "192.0.2.7/32"
    created: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str  # the public key id (core/secrets.api_key_id)
    project_id: str
    name: str
    scopes: tuple[Scope, ...]
    digest: str
    created: datetime
    last_used: datetime | None = None


@dataclass(frozen=True, slots=True)
class DkimKey:
    selector: str
    algorithm: DkimAlgorithm
    private_pem: str
    public_record: str  # "v=DKIM1; k=...; p=..."
    status: DkimStatus
    created: datetime
    activated: datetime | None = None
    retire_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class Domain:
    id: str
    project_id: str
    name: str  # A-label, lower case
    verification_token: str
    verified: bool
    created: datetime
    verified_at: datetime | None
    last_checked: datetime | None
    dkim_keys: tuple[DkimKey, ...]
    check_json: str = "{}"  # last per-record check result, JSON


@dataclass(frozen=True, slots=True)
class AddressIdentity:
    """An address a project asked to send as. It is `verified` only once someone who reads
    that mailbox used the link or code Postroom mailed to it (platform/address_proof.py);
    until then it is `pending` and allows nothing. The token itself is never stored: only its
    SHA-256 (`token_digest`), with its expiry; a newer mail replaces it."""

    project_id: str
    address: str  # lower case
    created: datetime
    status: AddressStatus = "pending"
    token_digest: str | None = None
    token_expires: datetime | None = None
    verified_at: datetime | None = None
    last_mail: datetime | None = None  # when the last verification mail was queued
    mails_in_window: int = 0  # verification mails queued since `window_start`
    window_start: datetime | None = None

    @property
    def verified(self) -> bool:
        return self.status == "verified"


@dataclass(frozen=True, slots=True)
class AdminUser:
    id: str
    username: str
    password_hash: str  # argon2id
    created: datetime


class PlatformStore(Protocol):
    """Persistence of platform entities. Synchronous; async callers use worker threads.

    Lookups raise core.errors.NotFound; creating a duplicate raises core.errors.InvalidInput
    naming the field. Implemented on the same database as the MessageStore.
    """

    def generation(self) -> int:
        """A counter the database raises in the same transaction as any change to projects,
        SMTP/IP credentials, API keys, domains, DKIM keys or verified addresses, by whoever
        makes it
        (recording a credential's last use is no change). Cheap: read it to tell whether
        what a cache holds may have changed."""
        ...

    # projects
    def create_project(self, project: Project) -> Project: ...
    def get_project(self, project_id: str) -> Project: ...
    def list_projects(self) -> list[Project]: ...
    def update_project(self, project: Project) -> Project:
        """Name, mode and quotas (never the pause or the suspension)."""
        ...

    def set_suspension(self, project_id: str, when: datetime | None, reason: str = "") -> Project:
        """Suspend the project's sending (`when`, `reason`) or lift it (`when` None); returns
        the project as stored. NotFound when it does not exist."""
        ...

    def delete_project(self, project_id: str) -> None: ...

    # SMTP and IP credentials
    def add_smtp_credential(self, credential: SmtpCredential) -> None: ...
    def smtp_credential_by_username(self, username: str) -> SmtpCredential: ...
    def smtp_credential_with_project(self, username: str) -> tuple[SmtpCredential, Project]:
        """The credential `username` names and its project, read in one transaction (the
        submission door re-checks an open session with it at every MAIL)."""
        ...

    def list_smtp_credentials(self, project_id: str) -> list[SmtpCredential]: ...
    def delete_smtp_credential(self, credential_id: str) -> None: ...
    def touch_smtp_credential(self, credential_id: str, when: datetime) -> None: ...
    def add_ip_credential(self, credential: IpCredential) -> None: ...
    def list_ip_credentials(self, project_id: str | None = None) -> list[IpCredential]: ...
    def delete_ip_credential(self, credential_id: str) -> None: ...

    # API keys
    def add_api_key(self, key: ApiKey) -> None: ...
    def api_key(self, key_id: str) -> ApiKey: ...
    def list_api_keys(self, project_id: str) -> list[ApiKey]: ...
    def delete_api_key(self, key_id: str) -> None: ...
    def touch_api_key(self, key_id: str, when: datetime) -> None: ...

    # domains, DKIM keys, verified addresses
    def add_domain(self, domain: Domain, *, limit: int | None = None) -> None:
        """Store a new domain; LimitExceeded when its project has `limit` identities (domains
        and address identities together) already."""
        ...

    def get_domain(self, project_id: str, name: str) -> Domain: ...
    def list_domains(self, project_id: str | None = None) -> list[Domain]: ...
    def save_domain(self, domain: Domain) -> None:
        """Replace the domain's mutable state (verified, checks, DKIM keys)."""
        ...

    def delete_domain(self, project_id: str, name: str) -> None: ...

    # address identities (pending or verified)
    def add_address_identity(self, identity: AddressIdentity, *, limit: int | None = None) -> None:
        """Store a new identity; LimitExceeded as add_domain's `limit`."""
        ...

    def get_address_identity(self, project_id: str, address: str) -> AddressIdentity: ...
    def address_identity_by_token(self, token_digest: str) -> AddressIdentity: ...
    def list_address_identities(self, project_id: str) -> list[AddressIdentity]: ...
    def save_address_identity(self, identity: AddressIdentity) -> None:
        """Replace the identity's mutable state (status, token, mail counters)."""
        ...

    def confirm_address_identity(
        self, project_id: str, address: str, token_digest: str, now: datetime
    ) -> bool:
        """Mark the identity verified if it is still pending with this token, in one
        statement (two confirmations racing: one wins); False when it is not."""
        ...

    def delete_address_identity(self, project_id: str, address: str) -> None: ...

    # admin users
    def add_admin(self, user: AdminUser) -> None: ...
    def admin_by_username(self, username: str) -> AdminUser: ...
    def list_admins(self) -> list[AdminUser]: ...
    def delete_admin(self, username: str) -> None: ...

    # quotas: the sends stored per project (written with the messages, storage/batch.py)
    def count_sends(self, project_id: str, since: datetime) -> int: ...


def scopes_from(values: Sequence[str]) -> tuple[Scope, ...]:
    allowed: dict[str, Scope] = {"send": "send", "read": "read", "manage": "manage"}
    out: list[Scope] = []
    for value in values:
        if value not in allowed:
            raise InvalidInput(f"unknown scope {value!r}; use send, read or manage", "scopes")
        out.append(allowed[value])
    return tuple(out)
