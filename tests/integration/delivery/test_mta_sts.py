"""MTA-STS (RFC 8461) and TLS-RPT (RFC 8460) in the delivery worker, for real: a DNS server
on 127.0.0.1 publishes MX, A and TXT records; the policy is served over HTTPS on loopback with a
certificate of a test CA (trustme) and fetched through the real fetcher (httpx); the receiving
MX hosts are Postroom's own SMTP edge on 127.0.0.1-3 with a good certificate (the test CA's,
for the MX name), a bad one (self-signed, or the test CA's for another name) or no STARTTLS;
the store is the real SQLite store, and time is a fake clock."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from postroom.core.clock import FakeClock
from postroom.core.types import DELIVERED, QUEUED, Envelope
from postroom.delivery.mta_sts import HttpsPolicyFetcher, MtaSts, parse_policy
from postroom.delivery.schedule import RetrySchedule
from postroom.delivery.tls_reports import TlsReporting, build_report
from postroom.delivery.worker import DeliverySettings, DeliveryWorker, parse_tls_policies
from postroom.dns.resolver import DnsPythonResolver
from postroom.pipeline.complete import complete_message
from postroom.pipeline.deliveries import deliveries_for
from postroom.smtp.protocol import SessionPolicy
from postroom.smtp.server import Listener, SmtpServer
from postroom.smtp.tls import generate_self_signed, server_context
from postroom.storage import SqlMessageStore, open_store
from tests.dnszone import DnsZone, dns_zone
from tests.integration.delivery.test_worker import RAW, Receiver
from tests.integration.storage.factory import make_message

__all__ = ["dns_zone"]

POLICY = "version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: {max_age}\r\n"


@dataclass
class PolicyServer:
    """An HTTPS server on 127.0.0.1 answering every request with `status`, `media` and `body`."""

    body: str = ""
    status: int = 200
    media: str = "text/plain"
    requests: list[str] = field(default_factory=list)
    port: int = 0
    server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head.decode("latin-1"))
            body = self.body.encode()
            writer.write(
                f"HTTP/1.1 {self.status} X\r\nContent-Type: {self.media}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
async def policy_server(ca: trustme.CA) -> AsyncIterator[PolicyServer]:
    served = PolicyServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("mta-sts.example.net").configure_cert(context)
    served.server = await asyncio.start_server(served.handle, "127.0.0.1", 0, ssl=context)
    served.port = int(served.server.sockets[0].getsockname()[1])
    yield served
    served.server.close()
    await served.server.wait_closed()


def free_port() -> int:
    """A port free on 127.0.0.1, 127.0.0.2 and 127.0.0.3 (the MX hosts share one port)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        try:
            for host in ("127.0.0.2", "127.0.0.3"):
                with socket.socket() as probe:
                    probe.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port on 127.0.0.1-3")


StartMx = Callable[[str, str], Awaitable[Receiver]]


@pytest.fixture
async def mx_port() -> int:
    return free_port()


@pytest.fixture
async def start_mx(tmp_path: Path, ca: trustme.CA, mx_port: int) -> AsyncIterator[StartMx]:
    """start_mx(address, kind): kind "good" (the test CA's certificate for mx.example.net),
    "self-signed", "other-name" (the test CA's, for another name) or "plain" (no STARTTLS)."""
    servers: list[SmtpServer] = []

    async def start(address: str, kind: str) -> Receiver:
        directory = tmp_path / f"mx-{address}"
        directory.mkdir()
        cert, key = directory / "cert.pem", directory / "key.pem"
        if kind == "self-signed":
            generate_self_signed(cert, key, "mx.example.net")
        elif kind in ("good", "other-name"):
            name = "mx.example.net" if kind == "good" else "elsewhere.example.org"
            issued = ca.issue_cert(name)
            issued.private_key_pem.write_to_path(str(key))
            issued.cert_chain_pems[0].write_to_path(str(cert))
        receiver = Receiver()
        listener = Listener(
            door="mx",
            host=address,
            port=mx_port,
            policy=SessionPolicy(
                hostname="mx.example.net",
                starttls_available=kind != "plain",
                auth_without_tls=False,
            ),
            ssl_context=server_context(cert, key) if kind != "plain" else None,
        )
        server = SmtpServer(listener, receiver, clock=FakeClock())  # type: ignore[arg-type]
        await server.start()
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqlMessageStore]:
    opened = open_store(
        str(tmp_path / "data"), clock, writer_process=False, complete=complete_message
    )
    try:
        yield opened
    finally:
        await opened.close()


@dataclass
class Setup:
    store: SqlMessageStore
    clock: FakeClock
    zone: DnsZone
    ca: trustme.CA
    policy: PolicyServer
    mx_port: int
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def worker(self, **settings: Any) -> DeliveryWorker:
        resolver = DnsPythonResolver(self.zone.nameserver, timeout=1.0)
        client = httpx.AsyncClient(verify=trusting(self.ca), trust_env=False)
        self.clients.append(client)
        fetcher = HttpsPolicyFetcher(client, resolver, port=self.policy.port, allow_private=True)
        values: dict[str, Any] = {
            "helo_name": "out.postroom.test",
            "allow_private": True,
            "mx_port": self.mx_port,
            "connect_timeout": 2.0,
        }
        values.update(settings)
        reports = self.store.tls_reports
        return DeliveryWorker(
            self.store.queue,
            self.store,
            resolver,
            self.clock,
            DeliverySettings(**values),
            rng=random.Random(3),
            schedule=RetrySchedule(lifetime=86400),
            verify_tls=trusting(self.ca),
            mta_sts=MtaSts(resolver, fetcher, reports, self.clock),
            tls_reports=TlsReporting(resolver, reports, self.clock),
        )

    def publish(
        self, mode: str, mx: str = "mx.example.net", max_age: int = 86400, id: str = "one"
    ) -> None:
        self.zone.remove("_mta-sts.example.net")
        self.zone.add_txt("_mta-sts.example.net", f"v=STSv1; id={id}")
        self.policy.body = POLICY.format(mode=mode, mx=mx, max_age=max_age)

    async def queue(self, *recipients: str) -> str:
        base = make_message(self.clock, to=recipients, project="acme", status="queued", raw=RAW)
        envelope = Envelope("app@example.com", tuple(recipients), {}, tuple({} for _ in recipients))
        message = dataclasses.replace(base, envelope=envelope, deliveries=deliveries_for(envelope))
        await self.store.add(message)
        return message.id

    def state(self, message_id: str) -> tuple[str, int, str]:
        (entry,) = self.store.queue.entries(message_id)
        return entry.status, entry.attempts, entry.last_error or ""

    def tls_policy(self, message_id: str) -> str:
        return self.store.queue.attempts("acme", message_id)[-1].attempt.tls_policy


@pytest.fixture
async def setup(
    store: SqlMessageStore,
    clock: FakeClock,
    dns_zone: DnsZone,
    ca: trustme.CA,
    policy_server: PolicyServer,
    mx_port: int,
) -> AsyncIterator[Setup]:
    made = Setup(store, clock, dns_zone, ca, policy_server, mx_port)
    dns_zone.add_a("mta-sts.example.net", "127.0.0.1")
    dns_zone.add_mx("example.net", 10, "mx.example.net")
    dns_zone.add_a("mx.example.net", "127.0.0.1")
    dns_zone.add_txt("_smtp._tls.example.net", "v=TLSRPTv1; rua=mailto:tlsrpt@example.net")
    yield made
    for client in made.clients:
        await client.aclose()


def counts(setup: Setup) -> dict[str, int]:
    day = setup.clock.now().date().isoformat()
    found: dict[str, int] = {}
    for _, domain, result, sessions in setup.store.tls_reports.summary(day, day):
        assert domain == "example.net"
        found[result] = found.get(result, 0) + sessions
    return found


async def test_enforce_delivers_over_verified_tls_and_counts_the_session(
    setup: Setup, start_mx: StartMx
) -> None:
    receiver = await start_mx("127.0.0.1", "good")
    setup.publish("enforce")
    message_id = await setup.queue("a@example.net")
    worker = setup.worker()
    await worker.run_once()
    assert setup.state(message_id)[0] == DELIVERED
    (got,) = receiver.messages
    assert got.session.tls is not None
    assert "mode enforce" in setup.tls_policy(message_id)
    assert "certificate of mx.example.net verified" in setup.tls_policy(message_id)
    request = setup.policy.requests[0]
    assert request.startswith("GET /.well-known/mta-sts.txt HTTP/1.1")
    assert f"host: mta-sts.example.net:{setup.policy.port}" in request.lower()
    await worker.close()  # stores the counts
    assert counts(setup) == {"success": 1}
    sessions = setup.store.tls_reports.sessions("example.net", setup.clock.now().date().isoformat())
    stored = setup.store.tls_reports.policy("example.net")
    assert stored is not None
    report = build_report(
        "example.net",
        setup.clock.now().date(),
        sessions,
        parse_policy("example.net", *stored),
        organization="postroom.test",
        contact="postmaster@postroom.test",
        report_id="r",
    )
    (entry,) = report["policies"]
    assert entry["policy"]["policy-type"] == "sts"
    assert entry["policy"]["mx-host"] == ["mx.example.net"]
    assert entry["summary"]["total-successful-session-count"] == 1


@pytest.mark.parametrize(
    ("kind", "result"),
    [
        ("self-signed", "certificate-not-trusted"),
        ("other-name", "certificate-host-mismatch"),
        ("plain", "starttls-not-supported"),
    ],
)
async def test_enforce_never_delivers_without_valid_tls(
    setup: Setup, start_mx: StartMx, kind: str, result: str
) -> None:
    receiver = await start_mx("127.0.0.1", kind)
    setup.publish("enforce")
    message_id = await setup.queue("a@example.net")
    worker = setup.worker()
    await worker.run_once()
    status, attempts, error = setup.state(message_id)
    assert (status, attempts) == (QUEUED, 1)  # deferred: a temporary failure
    assert error.startswith("mx.example.net[127.0.0.1]: 451 4.7.")
    assert receiver.messages == []
    assert f"mx.example.net[127.0.0.1]: {result}" in setup.tls_policy(message_id)
    await worker.close()
    assert counts(setup) == {result: 1}


async def test_enforce_skips_mx_hosts_the_policy_does_not_list(
    setup: Setup, start_mx: StartMx
) -> None:
    setup.zone.add_mx("example.net", 5, "rogue.example.net")  # preferred, but not listed
    setup.zone.add_a("rogue.example.net", "127.0.0.2")
    rogue = await start_mx("127.0.0.2", "good")
    listed = await start_mx("127.0.0.1", "good")
    setup.publish("enforce")
    message_id = await setup.queue("a@example.net")
    await setup.worker().run_once()
    assert setup.state(message_id)[0] == DELIVERED
    assert rogue.messages == [] and len(listed.messages) == 1
    attempt = setup.store.queue.attempts("acme", message_id)[-1].attempt
    assert attempt.mx_host == "mx.example.net"
    assert "rogue.example.net[127.0.0.2]: 451 4.7.5" in attempt.earlier[0]
    assert "rogue.example.net is not an MX host of the MTA-STS policy" in attempt.tls_policy


async def test_enforce_tries_the_next_listed_mx_after_a_bad_certificate(
    setup: Setup, start_mx: StartMx
) -> None:
    setup.zone.add_mx("example.net", 20, "mx2.example.net")
    setup.zone.add_a("mx2.example.net", "127.0.0.3")
    bad = await start_mx("127.0.0.1", "self-signed")
    await start_mx("127.0.0.3", "good")  # its certificate is for mx.example.net, not mx2
    setup.publish("enforce", mx="*.example.net")
    message_id = await setup.queue("a@example.net")
    worker = setup.worker()
    await worker.run_once()
    status, _, _ = setup.state(message_id)
    assert status == QUEUED and bad.messages == []
    policy = setup.tls_policy(message_id)
    assert "mx.example.net[127.0.0.1]: certificate-not-trusted" in policy
    assert "mx2.example.net[127.0.0.3]: certificate-host-mismatch" in policy
    await worker.close()
    assert counts(setup) == {"certificate-not-trusted": 1, "certificate-host-mismatch": 1}


async def test_testing_mode_delivers_and_records_the_failure(
    setup: Setup, start_mx: StartMx
) -> None:
    receiver = await start_mx("127.0.0.1", "self-signed")
    setup.publish("testing")
    message_id = await setup.queue("a@example.net")
    worker = setup.worker()
    await worker.run_once()
    assert setup.state(message_id)[0] == DELIVERED
    (got,) = receiver.messages
    assert got.session.tls is not None  # opportunistic TLS, certificate not checked
    policy = setup.tls_policy(message_id)
    assert "mode testing" in policy
    assert "certificate-not-trusted" in policy and "delivered without the policy's TLS" in policy
    await worker.close()
    assert counts(setup) == {"certificate-not-trusted": 1}


async def test_a_none_policy_and_no_policy_deliver_as_usual(
    setup: Setup, start_mx: StartMx
) -> None:
    receiver = await start_mx("127.0.0.1", "self-signed")
    setup.publish("none", mx="other.example.org")
    message_id = await setup.queue("a@example.net")
    worker = setup.worker()
    await worker.run_once()
    assert setup.state(message_id)[0] == DELIVERED and len(receiver.messages) == 1
    assert setup.tls_policy(message_id) == ""
    await worker.close()
    assert counts(setup) == {"success": 1}  # TLS (any certificate): no-policy-found, success


async def test_a_policy_that_cannot_be_fetched_is_no_policy(
    setup: Setup, start_mx: StartMx
) -> None:
    receiver = await start_mx("127.0.0.1", "self-signed")
    setup.publish("enforce")
    setup.policy.media = "text/html"  # RFC 8461 §3.3: text/plain only
    message_id = await setup.queue("a@example.net")
    worker = setup.worker()
    await worker.run_once()
    assert setup.state(message_id)[0] == DELIVERED and len(receiver.messages) == 1
    assert "no MTA-STS policy of example.net could be had" in setup.tls_policy(message_id)
    await worker.close()
    assert counts(setup) == {"sts-policy-invalid": 1}


async def test_a_policy_host_with_a_bad_certificate_is_sts_webpki_invalid(
    setup: Setup, start_mx: StartMx, tmp_path: Path
) -> None:
    await start_mx("127.0.0.1", "good")
    setup.publish("enforce")
    resolver = DnsPythonResolver(setup.zone.nameserver, timeout=1.0)
    async with httpx.AsyncClient(verify=ssl.create_default_context(), trust_env=False) as client:
        fetcher = HttpsPolicyFetcher(client, resolver, port=setup.policy.port, allow_private=True)
        sts = MtaSts(resolver, fetcher, setup.store.tls_reports, setup.clock)
        lookup = await sts.lookup("example.net")  # the test CA is not in the system's store
    assert lookup.policy is None and lookup.error is not None
    assert lookup.error.result_type == "sts-webpki-invalid"


async def test_the_policy_cache_survives_a_restart_and_refreshes(
    setup: Setup, start_mx: StartMx, clock: FakeClock
) -> None:
    await start_mx("127.0.0.1", "self-signed")
    setup.publish("enforce", max_age=86400, id="one")
    first = await setup.queue("a@example.net")
    await setup.worker().run_once()
    assert setup.state(first)[:2] == (QUEUED, 1) and len(setup.policy.requests) == 1

    # "Restart": a new worker on the same database. The TXT record is gone and the policy
    # host answers 404: the cached, unexpired policy still applies (RFC 8461 §3.3).
    setup.zone.remove("_mta-sts.example.net")
    setup.policy.status = 404
    second = await setup.queue("b@example.net")
    restarted = setup.worker()
    await restarted.run_once()
    assert setup.state(second)[:2] == (QUEUED, 1)
    assert "mode enforce, id one" in setup.tls_policy(second)
    assert restarted.mta_sts is not None and restarted.mta_sts.fetches == 0

    # A new id in DNS: fetched again at the next look (after the in-memory recheck time).
    setup.publish("testing", id="two")
    setup.policy.status = 200
    clock.advance(restarted.mta_sts.recheck + 1)
    third = await setup.queue("c@example.net")
    await restarted.run_once()
    assert setup.state(third)[0] == DELIVERED
    assert "mode testing, id two" in setup.tls_policy(third)
    assert restarted.mta_sts.fetches == 1

    # Same id, but less than a quarter of max_age left: refreshed before it expires.
    setup.policy.body = POLICY.format(mode="enforce", mx="mx.example.net", max_age=86400)
    clock.advance(86400 * 0.8)
    fourth = await setup.queue("d@example.net")
    await restarted.run_once()
    assert restarted.mta_sts.fetches == 2
    assert setup.state(fourth)[:2] == (QUEUED, 1)  # enforce again: the bad certificate fails

    # Expired and nothing live: no policy any more.
    setup.zone.remove("_mta-sts.example.net")
    clock.advance(86400 * 2)
    fifth = await setup.queue("e@example.net")
    await restarted.run_once()
    assert setup.state(fifth)[0] == DELIVERED


async def test_configured_per_domain_tls(setup: Setup, start_mx: StartMx) -> None:
    await start_mx("127.0.0.1", "self-signed")
    setup.zone.remove("_smtp._tls.example.net")
    message_id = await setup.queue("a@example.net")
    policies = parse_tls_policies("example.net=verify")
    await setup.worker(tls_policies=policies).run_once()
    status, _, error = setup.state(message_id)
    assert status == QUEUED and "certificate verify failed" in error
    assert "TLS verify for example.net (configured)" in setup.tls_policy(message_id)
    again = await setup.queue("b@example.net")
    await setup.worker(tls_policies=parse_tls_policies("example.net=required")).run_once()
    assert setup.state(again)[0] == DELIVERED  # required: TLS, any certificate
