"""The platform's rules, in one place for the CLI, the management API and the web pages.

`PlatformService` validates input, generates secrets (returned once, stored as digests or
hashes), makes DKIM keys, checks domains through the injected Resolver and reads time from
the injected Clock. Storage goes through the PlatformStore port.

Everything is synchronous except what asks DNS (`verify`, `activate`, `check_due_domains`),
which is async and runs its store calls in worker threads. Async callers (HTTP handlers) run
the synchronous methods in worker threads too: they touch the database, and hashing an admin
password takes a good fraction of a second by design.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, NotFound
from postroom.core.ids import new_id
from postroom.core.platform import (
    DEFAULT_PROJECT,
    AddressIdentity,
    AdminUser,
    ApiKey,
    DkimKey,
    Domain,
    IpCredential,
    PlatformStore,
    Project,
    Scope,
    SmtpCredential,
)
from postroom.core.secrets import (
    api_key_id,
    hash_password,
    new_api_key,
    new_secret,
    secret_digest,
    verify_password,
    verify_secret,
)
from postroom.dns.dkim import dns_record_name, normalize_domain
from postroom.dns.domain_checks import (
    DkimPublication,
    DomainSpec,
    check_domain,
    new_verification_token,
)
from postroom.dns.resolver import Resolver
from postroom.pipeline.quota import Usage, read_usage
from postroom.platform import rules
from postroom.platform.address_proof import (
    AddressProofs,
    AddressProofSettings,
    IssuedAddressToken,
)
from postroom.platform.domains import (
    DomainReport,
    DomainSettings,
    KeyRecord,
    check_result_json,
    domain_spec,
    key_record,
    make_key,
    published_keys,
    report,
)

__all__ = [
    "UNSET",
    "IssuedApiKey",
    "IssuedSmtpCredential",
    "PlatformService",
    "Usage",
]

log = logging.getLogger("postroom.platform")
# Sending identities (domains and addresses together) per project, as SES per account and
# region; the config option max_identities.
MAX_IDENTITIES = 10_000

_USERNAME_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
SMTP_PASSWORD_PREFIX = "prs"
_AUTH_FAILED = "invalid username or password"
_KEY_FAILED = "unknown or revoked API key"
KEY_TOUCH_INTERVAL = timedelta(minutes=1)  # an API key's last_used is written at most this often


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


@dataclass(frozen=True, slots=True)
class IssuedSmtpCredential:
    """A new SMTP credential: show `password` once; only its digest is stored."""

    credential: SmtpCredential
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """A new API key: show `token` once; only its digest is stored."""

    key: ApiKey
    token: str = field(repr=False)


class PlatformService:
    def __init__(
        self,
        store: PlatformStore,
        clock: Clock,
        resolver: Resolver,
        settings: DomainSettings,
        proofs: AddressProofSettings | None = None,
        max_identities: int = MAX_IDENTITIES,
    ) -> None:
        self.store = store
        self.clock = clock
        self.resolver = resolver
        self.settings = settings
        self.max_identities = max_identities
        self.addresses = AddressProofs(
            store, clock, proofs or AddressProofSettings(), max_identities
        )
        # A valid hash to verify against when the user does not exist (same work either way).
        self._dummy_hash: str | None = None

    # -- projects --------------------------------------------------------------------------

    def create_project(
        self,
        project_id: str,
        name: str | None = None,
        mode: str = "capture",
        daily_quota: int | None = None,
        rate_limit: int | None = None,
    ) -> Project:
        slug = rules.project_id(project_id)
        project = Project(
            id=slug,
            name=rules.display_name(name if name is not None else slug),
            mode=rules.mode(mode),
            created=self.clock.now(),
            daily_quota=rules.quota(daily_quota, "daily_quota"),
            rate_limit=rules.quota(rate_limit, "rate_limit"),
        )
        return self.store.create_project(project)

    def get_project(self, project_id: str) -> Project:
        return self.store.get_project(project_id)

    def list_projects(self) -> list[Project]:
        return self.store.list_projects()

    def update_project(
        self,
        project_id: str,
        *,
        name: str | _Unset = UNSET,
        mode: str | _Unset = UNSET,
        daily_quota: int | _Unset | None = UNSET,
        rate_limit: int | _Unset | None = UNSET,
    ) -> Project:
        """Change what is given; quotas take None or 0 for no limit. The default project stays
        in capture mode: it is where unauthenticated capture mail goes, so it must never relay."""
        project = self.store.get_project(project_id)
        if not isinstance(name, _Unset):
            project = replace(project, name=rules.display_name(name))
        if not isinstance(mode, _Unset):
            new_mode = rules.mode(mode)
            if project.id == DEFAULT_PROJECT and new_mode != "capture":
                raise InvalidInput(
                    "the default project receives unauthenticated capture mail and never "
                    "relays: create another project for live sending",
                    "mode",
                )
            project = replace(project, mode=new_mode)
        if not isinstance(daily_quota, _Unset):
            project = replace(project, daily_quota=rules.quota(daily_quota, "daily_quota"))
        if not isinstance(rate_limit, _Unset):
            project = replace(project, rate_limit=rules.quota(rate_limit, "rate_limit"))
        return self.store.update_project(project)

    def suspend_project(self, project_id: str, reason: object = None) -> Project:
        """An admin suspends the project's sending (any mode): every door refuses its next
        message (pipeline/submission.py) until `resume_project`. Suspending a suspended
        project keeps its first time and takes the new reason. InvalidInput (field `reason`);
        NotFound when it does not exist."""
        text = rules.suspend_reason(reason)
        project = self.store.get_project(project_id)
        when = project.suspended or self.clock.now()
        return self.store.set_suspension(project.id, when, text)

    def resume_project(self, project_id: str) -> Project:
        """Lift an admin's suspension. InvalidInput (field `id`) when the project is not
        suspended; NotFound when it does not exist."""
        project = self.store.get_project(project_id)
        if project.suspended is None:
            raise InvalidInput(f"project {project_id!r} is not suspended", "id")
        return self.store.set_suspension(project.id, None)

    def delete_project(self, project_id: str) -> None:
        """Delete the project with its credentials, keys, domains and messages."""
        if project_id == DEFAULT_PROJECT:
            raise InvalidInput("the default project cannot be deleted", "id")
        self.store.delete_project(project_id)

    def usage(self, project_id: str) -> Usage:
        """The project's sends in the rolling 24 h as stored now (counted with each message:
        what the doors enforce) and its quotas."""
        return read_usage(self.store, self.store.get_project(project_id), self.clock.now())

    # -- SMTP credentials ------------------------------------------------------------------

    def create_smtp_credential(
        self,
        project_id: str,
        username: str | None = None,
        allowed_from: Iterable[object] = (),
    ) -> IssuedSmtpCredential:
        """A credential with a generated password (returned this once). Without `username`
        one is generated (`prj-` and 12 random characters). `allowed_from` restricts the
        sender to these addresses or domains (still subject to verified identities)."""
        self.store.get_project(project_id)
        if username is None or username == "":
            name = "prj-" + "".join(secrets.choice(_USERNAME_ALPHABET) for _ in range(12))
        else:
            name = rules.smtp_username(username)
        password = new_secret(SMTP_PASSWORD_PREFIX)
        credential = SmtpCredential(
            id=new_id(self.clock.now()),
            project_id=project_id,
            username=name,
            secret_digest=secret_digest(password),
            allowed_from=rules.sender_patterns(allowed_from),
            created=self.clock.now(),
        )
        self.store.add_smtp_credential(credential)
        log.info(
            "smtp credential created",
            extra={"path": f"{project_id}/{credential.username}"},
        )
        return IssuedSmtpCredential(credential, password)

    def list_smtp_credentials(self, project_id: str) -> list[SmtpCredential]:
        self.store.get_project(project_id)
        return self.store.list_smtp_credentials(project_id)

    def get_smtp_credential(self, project_id: str, id_or_username: str) -> SmtpCredential:
        for credential in self.store.list_smtp_credentials(project_id):
            if id_or_username in (credential.id, credential.username):
                return credential
        raise NotFound(f"project {project_id!r} has no SMTP credential {id_or_username!r}")

    def delete_smtp_credential(self, project_id: str, id_or_username: str) -> None:
        credential = self.get_smtp_credential(project_id, id_or_username)
        self.store.delete_smtp_credential(credential.id)

    # -- IP credentials --------------------------------------------------------------------

    def create_ip_credential(self, project_id: str, network: str) -> IpCredential:
        self.store.get_project(project_id)
        credential = IpCredential(
            id=new_id(self.clock.now()),
            project_id=project_id,
            network=rules.network(network),
            created=self.clock.now(),
        )
        self.store.add_ip_credential(credential)
        return credential

    def list_ip_credentials(self, project_id: str | None = None) -> list[IpCredential]:
        if project_id is not None:
            self.store.get_project(project_id)
        return self.store.list_ip_credentials(project_id)

    def delete_ip_credential(self, project_id: str, credential_id: str) -> None:
        for credential in self.store.list_ip_credentials(project_id):
            if credential_id in (credential.id, credential.network):
                self.store.delete_ip_credential(credential.id)
                return
        raise NotFound(f"project {project_id!r} has no IP credential {credential_id!r}")

    # -- API keys --------------------------------------------------------------------------

    def create_api_key(
        self, project_id: str, name: str, scopes: Sequence[object] = ("send",)
    ) -> IssuedApiKey:
        self.store.get_project(project_id)
        issued = new_api_key()
        key = ApiKey(
            id=issued.key_id,
            project_id=project_id,
            name=rules.display_name(name),
            scopes=rules.scopes(scopes),
            digest=issued.digest,
            created=self.clock.now(),
        )
        self.store.add_api_key(key)
        log.info("api key created", extra={"path": f"{project_id}/{key.id}"})
        return IssuedApiKey(key, issued.token)

    def list_api_keys(self, project_id: str) -> list[ApiKey]:
        self.store.get_project(project_id)
        return self.store.list_api_keys(project_id)

    def delete_api_key(self, project_id: str, key_id: str) -> None:
        key = self.store.api_key(key_id)
        if key.project_id != project_id:
            raise NotFound(f"project {project_id!r} has no API key {key_id!r}")
        self.store.delete_api_key(key_id)

    def authenticate_api_key(self, token: str) -> ApiKey:
        """The key `token` is, its last use recorded. InvalidInput when it is not shaped like
        one of our keys, NotFound when unknown, revoked or wrong; never echoes the token."""
        key_id = api_key_id(token)
        try:
            key = self.store.api_key(key_id)
        except NotFound:
            raise NotFound(_KEY_FAILED) from None
        if not verify_secret(token.strip(), key.digest):
            raise NotFound(_KEY_FAILED)
        now = self.clock.now()
        # One write a minute at most: a busy client's every request would otherwise be a
        # database write (measured: 312 -> 200 requests/s), for a figure shown to the minute.
        if key.last_used is None or not timedelta(0) <= now - key.last_used < KEY_TOUCH_INTERVAL:
            self.store.touch_api_key(key.id, now)
        return replace(key, last_used=now)

    @staticmethod
    def has_scope(key: ApiKey, scope: Scope) -> bool:
        return scope in key.scopes

    # -- admin users -----------------------------------------------------------------------

    def create_admin(self, username: str, password: str) -> AdminUser:
        user = AdminUser(
            id=new_id(self.clock.now()),
            username=rules.admin_username(username),
            password_hash=hash_password(rules.admin_password(password)),
            created=self.clock.now(),
        )
        self.store.add_admin(user)
        log.info("admin user created", extra={"path": user.username})
        return user

    def list_admins(self) -> list[AdminUser]:
        return self.store.list_admins()

    def delete_admin(self, username: str) -> None:
        self.store.delete_admin(username)

    def authenticate_admin(self, username: str, password: str) -> AdminUser:
        """The admin if the password matches; else NotFound (same message and about the same
        time whether or not the user exists)."""
        try:
            user = self.store.admin_by_username(username)
        except NotFound:
            if self._dummy_hash is None:
                self._dummy_hash = hash_password(secrets.token_urlsafe(16))
            verify_password(self._dummy_hash, password)
            raise NotFound(_AUTH_FAILED) from None
        if not verify_password(user.password_hash, password):
            raise NotFound(_AUTH_FAILED)
        return user

    # -- address identities (platform/address_proof.py) ------------------------------------

    def add_address(self, project_id: str, address: str) -> IssuedAddressToken:
        """A pending identity and the token to mail to it: AddressVerifier
        (platform/address_mail.py) adds and mails in one go; use that."""
        return self.addresses.add(project_id, address)

    def renew_address_token(self, project_id: str, address: str) -> IssuedAddressToken:
        return self.addresses.renew(project_id, address)

    def address_for_token(self, token: object, field_name: str = "token") -> AddressIdentity:
        return self.addresses.lookup(token, field_name)

    def confirm_address(
        self,
        token: object,
        field_name: str = "token",
        *,
        project_id: str | None = None,
        address: str | None = None,
    ) -> AddressIdentity:
        identity = self.addresses.confirm(token, field_name, project_id=project_id, address=address)
        log.info("address verified", extra={"path": f"{identity.project_id}/{identity.address}"})
        return identity

    def get_address(self, project_id: str, address: str) -> AddressIdentity:
        return self.store.get_address_identity(project_id, rules.email_address(address))

    def list_addresses(self, project_id: str) -> list[AddressIdentity]:
        self.store.get_project(project_id)
        return self.store.list_address_identities(project_id)

    def delete_address(self, project_id: str, address: str) -> None:
        self.store.delete_address_identity(project_id, rules.email_address(address))

    # -- domains ---------------------------------------------------------------------------

    def add_domain(
        self,
        project_id: str,
        name: str,
        *,
        algorithm: str | None = None,
        private_key: str | None = None,
        selector: str | None = None,
    ) -> DomainReport:
        """Add a sending domain with a verification token and its first (active) DKIM key:
        RSA-2048 by default, Ed25519, or the given private key. Returns the records to
        publish; run `verify` once they are. LimitExceeded when the project has
        `max_identities` domains and addresses already."""
        self.store.get_project(project_id)
        domain_name = normalize_domain(name)
        now = self.clock.now()
        key = make_key(
            algorithm,
            private_key,
            selector=selector,
            taken=self._selectors_elsewhere(project_id, domain_name),
            domain=domain_name,
            now=now,
            rsa_bits=self.settings.rsa_bits,
            status="active",
        )
        domain = Domain(
            id=new_id(now),
            project_id=project_id,
            name=domain_name,
            verification_token=new_verification_token(),
            verified=False,
            created=now,
            verified_at=None,
            last_checked=None,
            dkim_keys=(key,),
        )
        self.store.add_domain(domain, limit=self.max_identities)
        log.info("domain added", extra={"path": f"{project_id}/{domain_name}"})
        return report(domain, self.settings)

    def _domain(self, project_id: str, name: str) -> Domain:
        return self.store.get_domain(project_id, normalize_domain(name))

    def _selectors_elsewhere(self, project_id: str, name: str) -> set[str]:
        """The DKIM selectors other projects use on the same domain: a project that adds a
        domain another one has must publish its own key at its own name (two keys at one
        name would verify neither)."""
        return {
            key.selector
            for domain in self.store.list_domains(None)
            if domain.name == name and domain.project_id != project_id
            for key in domain.dkim_keys
        }

    def get_domain(self, project_id: str, name: str) -> Domain:
        return self._domain(project_id, name)

    def list_domains(self, project_id: str | None = None) -> list[Domain]:
        if project_id is not None:
            self.store.get_project(project_id)
        return self.store.list_domains(project_id)

    def delete_domain(self, project_id: str, name: str) -> None:
        self.store.delete_domain(project_id, normalize_domain(name))

    def records(self, project_id: str, name: str) -> DomainReport:
        """The DNS records to publish and how each stood at the last check."""
        return report(self._domain(project_id, name), self.settings)

    def _judge(self, domain: Domain, checked: Domain, result_verified: bool | None) -> Domain:
        now = self.clock.now()
        verified = domain.verified if result_verified is None else result_verified
        verified_at = domain.verified_at
        if verified and not domain.verified:
            verified_at = now
        elif not verified:
            verified_at = None
        return replace(
            domain,
            verified=verified,
            verified_at=verified_at,
            last_checked=now,
            check_json=checked.check_json,
        )

    async def verify(self, project_id: str, name: str) -> DomainReport:
        """Look up every record now and store the result. The domain is verified when its
        verification TXT and its active DKIM key are published. A DNS failure (timeout,
        SERVFAIL) on one of those leaves the verified flag as it was."""
        domain = await asyncio.to_thread(self._domain, project_id, name)
        return await self._verify(domain)

    async def _verify(self, domain: Domain) -> DomainReport:
        keys = published_keys(domain)
        result = await check_domain(self.resolver, domain_spec(domain, self.settings, keys))
        active = [k for k in keys if k.status == "active"]
        wanted = {"verification"} | {
            f"dkim:{dns_record_name(k.selector, domain.name)}" for k in active
        }
        decisive = [
            c
            for c in result.checks
            if c.record.kind == "verification" or f"dkim:{c.record.name}" in wanted
        ]
        verdict: bool | None
        if not active:
            verdict = False
        elif any(c.status == "error" for c in decisive):
            verdict = None
        else:
            verdict = all(c.status == "ok" for c in decisive) and len(decisive) == 1 + len(active)
        now = self.clock.now()
        checked = replace(
            domain,
            check_json=check_result_json(
                result, domain.verified if verdict is None else verdict, now
            ),
        )

        def save() -> Domain:
            # Re-read so that a key rotated meanwhile is not lost; keep its keys.
            fresh = self.store.get_domain(domain.project_id, domain.name)
            updated = self._judge(fresh, checked, verdict)
            self.store.save_domain(updated)
            return updated

        updated = await asyncio.to_thread(save)
        if updated.verified != domain.verified:
            log.info(
                "domain verified" if updated.verified else "domain no longer verified",
                extra={"path": f"{domain.project_id}/{domain.name}"},
            )
        return report(updated, self.settings)

    async def check_due_domains(
        self, unverified_every: timedelta, verified_every: timedelta
    ) -> list[DomainReport]:
        """Verify the domains whose last check is older than their interval (unverified
        domains are checked more often). One failing domain does not stop the others."""
        now = self.clock.now()
        domains = await asyncio.to_thread(self.store.list_domains, None)
        out: list[DomainReport] = []
        for domain in domains:
            every = verified_every if domain.verified else unverified_every
            if domain.last_checked is not None and now - domain.last_checked < every:
                continue
            try:
                out.append(await self._verify(domain))
            except NotFound:
                continue  # deleted meanwhile
            except Exception:
                log.exception(
                    "domain check failed", extra={"path": f"{domain.project_id}/{domain.name}"}
                )
        return out

    # -- DKIM keys -------------------------------------------------------------------------

    def rotate(
        self,
        project_id: str,
        name: str,
        *,
        algorithm: str | None = None,
        private_key: str | None = None,
        selector: str | None = None,
    ) -> KeyRecord:
        """Make a new 'pending' key (same algorithm as the active one unless given) and
        return its record to publish. The active key keeps signing until `activate`. A
        pending key from an earlier rotation is replaced."""
        domain = self._domain(project_id, name)
        current = [k for k in domain.dkim_keys if k.status == "active"]
        if algorithm is None and private_key is None and current:
            algorithm = current[0].algorithm
        kept = tuple(k for k in domain.dkim_keys if k.status != "pending")
        key = make_key(
            algorithm,
            private_key,
            selector=selector,
            taken={k.selector for k in kept} | self._selectors_elsewhere(project_id, domain.name),
            domain=domain.name,
            now=self.clock.now(),
            rsa_bits=self.settings.rsa_bits,
            status="pending",
        )
        self.store.save_domain(replace(domain, dkim_keys=(*kept, key)))
        log.info(
            "dkim key rotation started",
            extra={"path": f"{project_id}/{domain.name}/{key.selector}"},
        )
        return key_record(domain.name, key)

    async def activate(self, project_id: str, name: str, selector: str) -> Domain:
        """Sign with `selector`'s key from now on, once its record resolves; the key it
        replaces becomes 'retiring' (still published) until now + the grace period."""
        domain = await asyncio.to_thread(self._domain, project_id, name)
        chosen = selector.strip().lower()
        key = next((k for k in domain.dkim_keys if k.selector == chosen), None)
        if key is None:
            raise NotFound(f"{domain.name} has no DKIM key with selector {chosen!r}")
        if key.status == "active":
            raise InvalidInput(f"selector {chosen} is already the active key", "selector")
        if key.status == "retired":
            raise InvalidInput(
                f"selector {chosen} is retired and its private key erased: rotate to make "
                "a new key",
                "selector",
            )
        record_name = dns_record_name(key.selector, domain.name)
        spec = DomainSpec(
            domain=domain.name,
            verification_token=domain.verification_token,
            dkim=(DkimPublication(key.selector, key.public_record),),
        )
        check = (await check_domain(self.resolver, spec)).of_kind("dkim")[0]
        if check.status != "ok":
            raise InvalidInput(
                f"the DKIM record of selector {chosen} does not resolve as it must "
                f'({check.detail}): publish TXT {record_name} "{key.public_record}", wait '
                "until DNS serves it, then activate again",
                "selector",
            )

        def save() -> Domain:
            fresh = self.store.get_domain(domain.project_id, domain.name)
            now = self.clock.now()
            keys: list[DkimKey] = []
            for k in fresh.dkim_keys:
                if k.selector == chosen:
                    keys.append(replace(k, status="active", activated=now, retire_after=None))
                elif k.status == "active":
                    keys.append(
                        replace(k, status="retiring", retire_after=now + self.settings.retire_grace)
                    )
                else:
                    keys.append(k)
            if not any(k.selector == chosen for k in keys):
                raise NotFound(f"{domain.name} has no DKIM key with selector {chosen!r}")
            updated = replace(fresh, dkim_keys=tuple(keys))
            self.store.save_domain(updated)
            return updated

        updated = await asyncio.to_thread(save)
        log.info("dkim key activated", extra={"path": f"{project_id}/{domain.name}/{chosen}"})
        return updated

    def retire_expired(self, now: datetime | None = None) -> list[tuple[str, str, str]]:
        """Retire the 'retiring' keys whose grace period is over (their private key is
        erased); returns (project, domain, selector) of each."""
        when = now or self.clock.now()
        retired: list[tuple[str, str, str]] = []
        for domain in self.store.list_domains(None):
            due = [
                k
                for k in domain.dkim_keys
                if k.status == "retiring" and k.retire_after is not None and k.retire_after <= when
            ]
            if not due:
                continue
            keys = tuple(
                replace(k, status="retired", private_pem="") if k in due else k
                for k in domain.dkim_keys
            )
            self.store.save_domain(replace(domain, dkim_keys=keys))
            for k in due:
                retired.append((domain.project_id, domain.name, k.selector))
                log.info(
                    "dkim key retired",
                    extra={"path": f"{domain.project_id}/{domain.name}/{k.selector}"},
                )
        return retired

    def close(self) -> None:
        close = getattr(self.store, "close", None)
        if callable(close):
            close()
