"""A real Postroom with both submission doors (STARTTLS and implicit TLS) on 127.0.0.1, a test
certificate authority (trustme), the SQL platform store holding a live project "acme" and a
capture project "sandbox", and a DNS server (tests/dnszone.py) publishing the DKIM keys."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme

from postroom.config import HostPort
from postroom.core.clock import FakeClock
from postroom.core.platform import (
    DkimKey,
    Domain,
    IpCredential,
    PlatformStore,
    Project,
    SmtpCredential,
)
from postroom.core.secrets import secret_digest
from postroom.core.types import MessageRecord, QueueEntry
from postroom.dns.dkim import (
    PrivateKey,
    dns_record,
    dns_record_name,
    dump_private_key,
    generate_ed25519,
    generate_rsa,
    key_type,
)
from postroom.storage.store import SqlMessageStore
from tests.dnszone import DnsZone, dns_zone
from tests.harness import ServerThread, make_config
from tests.identities import proven_address

__all__ = ["Env", "dns_zone"]

PASSWORD = "prs_live-password-0123456789abcdef"
SANDBOX_PASSWORD = "prs_sandbox-password-0123456789ab"
CREATED = datetime(2025, 6, 1, tzinfo=UTC)
_KEYS: dict[str, PrivateKey] = {}


def dkim_private(algorithm: str) -> PrivateKey:
    if algorithm not in _KEYS:
        _KEYS[algorithm] = generate_rsa(2048) if algorithm == "rsa" else generate_ed25519()
    return _KEYS[algorithm]


def dkim_key(key: PrivateKey, selector: str) -> DkimKey:
    return DkimKey(
        selector=selector,
        algorithm=key_type(key),
        private_pem=dump_private_key(key).decode("ascii"),
        public_record=dns_record(key),
        status="active",
        created=CREATED,
        activated=CREATED,
    )


def domain(
    name: str, project: str, keys: tuple[DkimKey, ...] = (), verified: bool = True
) -> Domain:
    return Domain(
        id=f"{project}-{name}",
        project_id=project,
        name=name,
        verification_token="token",
        verified=verified,
        created=CREATED,
        verified_at=CREATED if verified else None,
        last_checked=None,
        dkim_keys=keys,
    )


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


def write_cert(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert.private_key_pem.write_to_path(str(key_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    for extra in cert.cert_chain_pems[1:]:
        with cert_path.open("ab") as handle:
            handle.write(extra.bytes())
    return cert_path, key_path


@dataclass
class Env:
    server: ServerThread
    clock: FakeClock
    ca: trustme.CA
    ca_file: Path
    cert_dir: Path
    zone: DnsZone
    tmp: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def platform(self) -> PlatformStore:
        assert self.server.app.platform is not None
        return self.server.app.platform

    @property
    def store(self) -> SqlMessageStore:
        store = self.server.app.store
        assert isinstance(store, SqlMessageStore)
        return store

    @property
    def submission_port(self) -> int:
        return self.server.app.submission_port

    @property
    def submissions_port(self) -> int:
        return self.server.app.submissions_port

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return context

    def messages(self, project: str = "acme") -> list[MessageRecord]:
        return list(self.store.list(project, None, 0, 100).messages)

    def raw(self, record: MessageRecord) -> bytes:
        return self.store.raw(record.project, record.id)

    def queue(self, message_id: str | None = None) -> list[QueueEntry]:
        queue = self.store.queue
        return queue.all_entries() if message_id is None else queue.entries(message_id)

    def smtp(self, user: str = "app", password: str = PASSWORD) -> smtplib.SMTP:
        """smtplib on the STARTTLS door, upgraded and logged in."""
        client = smtplib.SMTP("127.0.0.1", self.submission_port, timeout=30)
        client.starttls(context=self.client_context())
        client.login(user, password)
        return client

    def tick(self, seconds: float = 1.0) -> None:
        """Move the server's fake clock on: its background jobs (postroom/supervisor.py) run
        when their time on this clock has come, and so do deferred deliveries (the delivery
        loop claims what was queued at once, and a deferral when its retry time comes)."""
        self.clock.advance(seconds)

    def invalidate(self) -> None:
        """Forget the pipeline's cached project views (after changing the platform store)."""
        self.server.app.invalidate_projects()

    def refresh_ip_credentials(self) -> None:
        self.server.call(self.server.app.refresh_ip_credentials())

    def add_ip_credential(self, network: str, project: str = "acme") -> None:
        self.platform.add_ip_credential(IpCredential(f"ip-{network}", project, network, CREATED))
        self.refresh_ip_credentials()

    def set_project(self, **changes: Any) -> None:
        from dataclasses import replace

        project = self.platform.get_project("acme")
        self.platform.update_project(replace(project, **changes))
        self.invalidate()


def start_env(
    tmp_path: Path, ca: trustme.CA, zone: DnsZone, clock: FakeClock | None = None, **overrides: Any
) -> Env:
    cert_dir = tmp_path / "tls"
    cert, key = write_cert(ca, cert_dir)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    clock = clock or FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    values: dict[str, Any] = {
        "submission": HostPort("127.0.0.1", 0),
        "submissions": HostPort("127.0.0.1", 0),
        "tls_cert": str(cert),
        "tls_key": str(key),
        "submission_auth_max_failures": 3,
        "submission_auth_window": 300.0,
        # The domains below are stored verified, not published in DNS: the periodic re-check
        # (which runs on the fake clock) would unverify them once a test moves it past 600 s.
        "domain_check_interval": 0.0,
    }
    values.update(overrides)
    server = ServerThread(make_config(tmp_path / "data", **values), clock).start()
    env = Env(server, clock, ca, ca_file, cert_dir, zone, tmp_path)
    platform = env.platform
    platform.create_project(Project("acme", "Acme", "live", CREATED))
    platform.create_project(Project("sandbox", "Sandbox", "capture", CREATED))
    rsa_key, ed_key = dkim_private("rsa"), dkim_private("ed25519")
    platform.add_domain(domain("example.com", "acme", (dkim_key(rsa_key, "rsa2025"),)))
    platform.add_domain(domain("ed.example", "acme", (dkim_key(ed_key, "ed2025"),)))
    platform.add_domain(domain("xn--bcher-kva.example", "acme", (dkim_key(rsa_key, "idn"),)))
    platform.add_domain(domain("pending.example", "acme", verified=False))
    platform.add_domain(domain("sandbox.example", "sandbox", (dkim_key(rsa_key, "sb"),)))
    # Test-only: a verified sender address without the mailed proof (tests/identities.py).
    platform.add_address_identity(proven_address("someone@gmail.example", "acme", CREATED))
    platform.add_smtp_credential(
        SmtpCredential("c1", "acme", "app", secret_digest(PASSWORD), (), CREATED)
    )
    platform.add_smtp_credential(
        SmtpCredential(
            "c2",
            "acme",
            "newsletter",
            secret_digest(PASSWORD),
            ("news.example.com", "ceo@example.com"),
            CREATED,
        )
    )
    platform.add_smtp_credential(
        SmtpCredential("c3", "sandbox", "sandbox", secret_digest(SANDBOX_PASSWORD), (), CREATED)
    )
    platform.add_domain(domain("news.example.com", "acme", (dkim_key(rsa_key, "news"),)))
    zone.add_txt(dns_record_name("rsa2025", "example.com"), dns_record(rsa_key))
    zone.add_txt(dns_record_name("news", "news.example.com"), dns_record(rsa_key))
    zone.add_txt(dns_record_name("idn", "xn--bcher-kva.example"), dns_record(rsa_key))
    zone.add_txt(dns_record_name("ed2025", "ed.example"), dns_record(ed_key))
    return env


@pytest.fixture
def env(
    request: pytest.FixtureRequest, tmp_path: Path, ca: trustme.CA, dns_zone: DnsZone
) -> Iterator[Env]:
    """A running server with both submission doors; `writer_process` is off unless a test
    asks for it with `@pytest.mark.parametrize("env", [True], indirect=True)`."""
    writer_process = bool(getattr(request, "param", False))
    environment = start_env(tmp_path, ca, dns_zone, writer_process=writer_process)
    try:
        yield environment
    finally:
        environment.server.stop()
