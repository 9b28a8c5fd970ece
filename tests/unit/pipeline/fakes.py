"""An in-memory PlatformStore for pipeline unit tests, and builders for its entities."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from postroom.core.errors import InvalidInput, NotFound
from postroom.core.platform import (
    AddressIdentity,
    AdminUser,
    ApiKey,
    DkimKey,
    Domain,
    IpCredential,
    Project,
    ProjectMode,
    SmtpCredential,
)
from postroom.core.secrets import secret_digest
from postroom.dns.dkim import PrivateKey, dns_record, dump_private_key, key_type
from tests.identities import proven_address

CREATED = datetime(2025, 1, 1, tzinfo=UTC)


class FakePlatformStore:
    """PlatformStore in dictionaries; `calls` counts calls by method name."""

    def __init__(self) -> None:
        self.projects: dict[str, Project] = {}
        self.smtp: dict[str, SmtpCredential] = {}
        self.ips: dict[str, IpCredential] = {}
        self.keys: dict[str, ApiKey] = {}
        self.domains: dict[tuple[str, str], Domain] = {}
        self.addresses: dict[tuple[str, str], AddressIdentity] = {}
        self.admins: dict[str, AdminUser] = {}
        self.sends: list[tuple[str, datetime, int]] = []
        self.touched: list[tuple[str, datetime]] = []
        self.calls: dict[str, int] = {}
        self.fail_count = False

    def _call(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def generation(self) -> int:
        """Changes whenever what it covers changes, like the database's triggers: computed
        from the contents, so tests that change the dictionaries directly move it too."""
        self._call("generation")
        return hash(
            tuple(
                tuple(sorted(table.items()))
                for table in (self.projects, self.smtp, self.ips, self.domains, self.addresses)
            )
        )

    # projects
    def create_project(self, project: Project) -> Project:
        if project.id in self.projects:
            raise InvalidInput("taken", "id")
        self.projects[project.id] = project
        return project

    def get_project(self, project_id: str) -> Project:
        self._call("get_project")
        try:
            return self.projects[project_id]
        except KeyError:
            raise NotFound(project_id) from None

    def list_projects(self) -> list[Project]:
        return list(self.projects.values())

    def update_project(self, project: Project) -> Project:
        self.projects[project.id] = project
        return project

    def set_suspension(self, project_id: str, when: datetime | None, reason: str = "") -> Project:
        project = replace(
            self.get_project(project_id), suspended=when, suspend_reason=reason if when else ""
        )
        self.projects[project_id] = project
        return project

    def delete_project(self, project_id: str) -> None:
        self.projects.pop(project_id, None)

    # credentials
    def add_smtp_credential(self, credential: SmtpCredential) -> None:
        self.smtp[credential.username] = credential

    def smtp_credential_by_username(self, username: str) -> SmtpCredential:
        self._call("smtp_credential_by_username")
        try:
            return self.smtp[username]
        except KeyError:
            raise NotFound(username) from None

    def smtp_credential_with_project(self, username: str) -> tuple[SmtpCredential, Project]:
        credential = self.smtp_credential_by_username(username)
        return credential, self.get_project(credential.project_id)

    def list_smtp_credentials(self, project_id: str) -> list[SmtpCredential]:
        return [c for c in self.smtp.values() if c.project_id == project_id]

    def delete_smtp_credential(self, credential_id: str) -> None:
        self.smtp = {k: v for k, v in self.smtp.items() if v.id != credential_id}

    def touch_smtp_credential(self, credential_id: str, when: datetime) -> None:
        self.touched.append((credential_id, when))

    def add_ip_credential(self, credential: IpCredential) -> None:
        self.ips[credential.id] = credential

    def list_ip_credentials(self, project_id: str | None = None) -> list[IpCredential]:
        return [c for c in self.ips.values() if project_id is None or c.project_id == project_id]

    def delete_ip_credential(self, credential_id: str) -> None:
        self.ips.pop(credential_id, None)

    # API keys
    def add_api_key(self, key: ApiKey) -> None:
        self.keys[key.id] = key

    def api_key(self, key_id: str) -> ApiKey:
        try:
            return self.keys[key_id]
        except KeyError:
            raise NotFound(key_id) from None

    def list_api_keys(self, project_id: str) -> list[ApiKey]:
        return [k for k in self.keys.values() if k.project_id == project_id]

    def delete_api_key(self, key_id: str) -> None:
        self.keys.pop(key_id, None)

    def touch_api_key(self, key_id: str, when: datetime) -> None:
        pass

    # domains
    def add_domain(self, domain: Domain, *, limit: int | None = None) -> None:
        self.domains[(domain.project_id, domain.name)] = domain

    def get_domain(self, project_id: str, name: str) -> Domain:
        self._call("get_domain")
        try:
            return self.domains[(project_id, name)]
        except KeyError:
            raise NotFound(name) from None

    def list_domains(self, project_id: str | None = None) -> list[Domain]:
        self._call("list_domains")
        return [
            d for d in self.domains.values() if project_id is None or d.project_id == project_id
        ]

    def save_domain(self, domain: Domain) -> None:
        self.domains[(domain.project_id, domain.name)] = domain

    def delete_domain(self, project_id: str, name: str) -> None:
        self.domains.pop((project_id, name), None)

    def add_address_identity(self, identity: AddressIdentity, *, limit: int | None = None) -> None:
        key = (identity.project_id, identity.address)
        if key in self.addresses:
            raise InvalidInput(f"{identity.address} exists", "address")
        self.addresses[key] = identity

    def get_address_identity(self, project_id: str, address: str) -> AddressIdentity:
        try:
            return self.addresses[(project_id, address)]
        except KeyError:
            raise NotFound(address) from None

    def address_identity_by_token(self, token_digest: str) -> AddressIdentity:
        for identity in self.addresses.values():
            if identity.token_digest == token_digest:
                return identity
        raise NotFound("token")

    def list_address_identities(self, project_id: str) -> list[AddressIdentity]:
        return [a for a in self.addresses.values() if a.project_id == project_id]

    def save_address_identity(self, identity: AddressIdentity) -> None:
        self.addresses[(identity.project_id, identity.address)] = identity

    def confirm_address_identity(
        self, project_id: str, address: str, token_digest: str, now: datetime
    ) -> bool:
        found = self.addresses.get((project_id, address))
        if (
            found is None
            or found.verified
            or found.token_digest != token_digest
            or found.token_expires is None
            or found.token_expires <= now
        ):
            return False
        self.addresses[(project_id, address)] = replace(found, status="verified", verified_at=now)
        return True

    def delete_address_identity(self, project_id: str, address: str) -> None:
        self.addresses.pop((project_id, address), None)

    # admins
    def add_admin(self, user: AdminUser) -> None:
        self.admins[user.username] = user

    def admin_by_username(self, username: str) -> AdminUser:
        try:
            return self.admins[username]
        except KeyError:
            raise NotFound(username) from None

    def list_admins(self) -> list[AdminUser]:
        return list(self.admins.values())

    def delete_admin(self, username: str) -> None:
        self.admins.pop(username, None)

    # quotas
    def store_sends(self, project_id: str, when: datetime, recipients: int) -> None:
        """What the message store's writer does in a submitted message's transaction."""
        self.sends.append((project_id, when, recipients))

    def count_sends(self, project_id: str, since: datetime) -> int:
        self._call("count_sends")
        if self.fail_count:
            raise RuntimeError("database down")
        return sum(n for p, when, n in self.sends if p == project_id and when >= since)


# -- builders ---------------------------------------------------------------------------------


def project(
    project_id: str = "acme",
    mode: ProjectMode = "live",
    daily_quota: int | None = None,
    rate_limit: int | None = None,
) -> Project:
    return Project(project_id, project_id.title(), mode, CREATED, daily_quota, rate_limit)


def credential(
    username: str = "app",
    password: str = "prs_secret",
    project_id: str = "acme",
    allowed_from: tuple[str, ...] = (),
) -> SmtpCredential:
    return SmtpCredential(
        f"cred-{username}", project_id, username, secret_digest(password), allowed_from, CREATED
    )


def dkim_key(key: PrivateKey, selector: str, status: str = "active") -> DkimKey:
    return DkimKey(
        selector=selector,
        algorithm=key_type(key),
        private_pem=dump_private_key(key).decode("ascii"),
        public_record=dns_record(key),
        status=status,  # type: ignore[arg-type]
        created=CREATED,
        activated=CREATED,
    )


def domain(
    name: str = "example.com",
    project_id: str = "acme",
    verified: bool = True,
    keys: tuple[DkimKey, ...] = (),
) -> Domain:
    return Domain(
        id=f"dom-{name}",
        project_id=project_id,
        name=name,
        verification_token="token",
        verified=verified,
        created=CREATED,
        verified_at=CREATED if verified else None,
        last_checked=None,
        dkim_keys=keys,
    )


def verified_address(address: str, project_id: str = "acme") -> AddressIdentity:
    """A verified identity, put into the fake store directly (tests only: tests/identities.py)."""
    return proven_address(address, project_id, CREATED)


def with_keys(dom: Domain, *keys: DkimKey) -> Domain:
    return replace(dom, dkim_keys=keys)
