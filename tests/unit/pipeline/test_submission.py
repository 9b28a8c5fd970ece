"""SubmissionSteps (checks, fix-ups, DKIM, quota) and SubmissionDoor (AUTH, IP credentials)
against an in-memory PlatformStore and a FakeClock."""

from __future__ import annotations

from dataclasses import replace

import dkim
import pytest

from postroom.core.clock import FakeClock
from postroom.core.errors import Rejected
from postroom.core.platform import IpCredential
from postroom.core.types import Envelope, IncomingMessage, SessionInfo
from postroom.dns.dkim import dns_record, generate_ed25519, generate_rsa
from postroom.metrics import Metrics
from postroom.pipeline.projects import ProjectDirectory
from postroom.pipeline.quota import QuotaTracker
from postroom.pipeline.signing import SignerCache
from postroom.pipeline.submission import (
    AUTH_REQUIRED,
    THROTTLED,
    SubmissionDoor,
    SubmissionSteps,
    Submitter,
)
from postroom.pipeline.throttle import AuthThrottle
from tests.dnszone import _ensure_dkimpy_ed25519

from .fakes import (
    CREATED,
    FakePlatformStore,
    credential,
    dkim_key,
    domain,
    project,
    verified_address,
)

RSA = generate_rsa(1024)
ED = generate_ed25519()
UNVERIFIED = (
    "Message rejected: Email address is not verified. The following identities failed the check: "
)


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def session(auth_user: str | None = None, peer: str = "192.0.2.10", sid: str = "S1") -> SessionInfo:
    return SessionInfo(
        door="submission",
        session_id=sid,
        peer_host=peer,
        peer_port=40000,
        server_name="mx.test",
        auth_user=auth_user,
    )


def incoming(
    data: bytes, mail_from: str = "app@example.com", rcpts: tuple[str, ...] = ("r@example.net",)
) -> IncomingMessage:
    return IncomingMessage(Envelope(mail_from, rcpts), data, session("app"))


MESSAGE = crlf("From: App <app@example.com>\nTo: r@example.net\nSubject: hi\n\nHello\n")


@pytest.fixture
def store() -> FakePlatformStore:
    s = FakePlatformStore()
    s.create_project(project("acme", "live"))
    s.create_project(project("sandbox", "capture"))
    s.add_domain(domain("example.com", keys=(dkim_key(RSA, "rsa1"), dkim_key(ED, "ed1"))))
    s.add_domain(domain("unverified.example", verified=False))
    s.add_domain(domain("example.com", project_id="sandbox"))
    s.add_verified_address(verified_address("Person@Gmail.example"))
    return s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def steps_for(store: FakePlatformStore, clock: FakeClock) -> SubmissionSteps:
    return SubmissionSteps(
        ProjectDirectory(store, clock),
        QuotaTracker(store, clock, Metrics()),
        SignerCache(clock),
        "mx.test",
    )


def dnsfunc(name: bytes | str, timeout: float = 5) -> bytes | None:
    text = name.decode() if isinstance(name, bytes) else name
    records = {
        "rsa1._domainkey.example.com.": dns_record(RSA),
        "ed1._domainkey.example.com.": dns_record(ED),
    }
    record = records.get(text) or records.get(text + ".")
    return record.encode() if record else None


async def test_live_message_is_fixed_up_signed_twice_and_queued(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    steps = steps_for(store, clock)
    prepared = await steps.prepare(
        incoming(MESSAGE), Submitter("acme", "smtp:app"), "01X", clock.now()
    )
    assert prepared.status == "queued"
    data = prepared.data
    assert data.startswith(b"DKIM-Signature:")
    assert data.count(b"DKIM-Signature:") == 2
    assert b"Message-ID: <01x@example.com>\r\n" in data
    assert b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n" in data
    _ensure_dkimpy_ed25519()
    signatures = data.split(b"DKIM-Signature:")
    assert b"a=rsa-sha256" in signatures[1] and b"a=ed25519-sha256" in signatures[2]
    assert dkim.verify(data, dnsfunc=dnsfunc)  # the first one (RSA)
    assert dkim.DKIM(data).verify(idx=1, dnsfunc=dnsfunc)  # Ed25519


async def test_capture_project_is_not_signed(store: FakePlatformStore, clock: FakeClock) -> None:
    prepared = await steps_for(store, clock).prepare(
        incoming(MESSAGE), Submitter("sandbox", "smtp:app"), "01X", clock.now()
    )
    assert prepared.status == "captured"
    assert b"DKIM-Signature" not in prepared.data


async def test_retired_and_pending_keys_do_not_sign(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    store.add_domain(
        domain(
            "example.com", keys=(dkim_key(RSA, "old", "retiring"), dkim_key(ED, "new", "pending"))
        )
    )
    prepared = await steps_for(store, clock).prepare(
        incoming(MESSAGE), Submitter("acme", "smtp:app"), "01X", clock.now()
    )
    assert prepared.status == "queued"
    assert b"DKIM-Signature" not in prepared.data


@pytest.mark.parametrize(
    ("head", "mail_from", "allowed", "failed"),
    [
        ("From: x@other.example\n", "app@example.com", (), "x@other.example"),
        ("From: app@example.com\n", "bounce@other.example", (), "bounce@other.example"),
        (
            "From: a@unverified.example, b@other.example\n",
            "c@third.example",
            (),
            "a@unverified.example, b@other.example, c@third.example",
        ),
        ("From: a@sub.example.com\n", "app@example.com", (), "a@sub.example.com"),
        (
            "From: app@example.com\nSender: s@other.example\n",
            "app@example.com",
            (),
            "s@other.example",
        ),
        ("From: x@other.example\n", "x@other.example", (), "x@other.example"),
        ("From: app@example.com\n", "app@example.com", ("news.example.com",), "app@example.com"),
        ("From: app@example.com\n", "app@example.com", ("other@example.com",), "app@example.com"),
        (
            "From: person@gmail.example\n",
            "app@example.com",
            ("example.com",),
            "person@gmail.example",
        ),
    ],
)
async def test_unverified_identities_get_the_ses_sentence(
    store: FakePlatformStore,
    clock: FakeClock,
    head: str,
    mail_from: str,
    allowed: tuple[str, ...],
    failed: str,
) -> None:
    data = crlf(head + "Subject: x\n\nbody\n")
    with pytest.raises(Rejected) as caught:
        await steps_for(store, clock).prepare(
            incoming(data, mail_from), Submitter("acme", "smtp:app", allowed), "01X", clock.now()
        )
    assert (caught.value.code, caught.value.enhanced) == (554, "5.7.1")
    assert caught.value.text == UNVERIFIED + failed


@pytest.mark.parametrize(
    ("head", "mail_from", "allowed"),
    [
        ("From: App <APP@Example.COM>\n", "app@example.com", ()),
        ("From: person@gmail.example\n", "PERSON@gmail.example", ()),
        ("From: person@gmail.example\n", "", ()),  # null reverse-path: From alone is checked
        ("From: app@example.com\n", "app@example.com", ("EXAMPLE.com",)),
        ("From: app@example.com\n", "app@example.com", ("app@example.com",)),
        (
            "From: person@gmail.example\n",
            "app@example.com",
            ("person@gmail.example", "example.com"),
        ),
    ],
)
async def test_verified_identities_pass(
    store: FakePlatformStore, clock: FakeClock, head: str, mail_from: str, allowed: tuple[str, ...]
) -> None:
    data = crlf(head + "Subject: x\n\nbody\n")
    prepared = await steps_for(store, clock).prepare(
        incoming(data, mail_from), Submitter("acme", "smtp:app", allowed), "01X", clock.now()
    )
    assert prepared.status == "queued"


async def test_idn_domain_matches_its_a_label(store: FakePlatformStore, clock: FakeClock) -> None:
    store.add_domain(domain("xn--bcher-kva.example"))
    data = crlf("From: Jörg <jörg@bücher.example>\nSubject: x\n\nbody\n")
    prepared = await steps_for(store, clock).prepare(
        incoming(data, "jörg@bücher.example"), Submitter("acme", "smtp:app"), "01X", clock.now()
    )
    assert b"Message-ID: <01x@xn--bcher-kva.example>" in prepared.data


async def test_missing_from_is_refused_before_anything_counts(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    steps = steps_for(store, clock)
    with pytest.raises(Rejected) as caught:
        await steps.prepare(
            incoming(crlf("Subject: x\n\nbody\n")), Submitter("acme", "s"), "01X", clock.now()
        )
    assert (caught.value.code, caught.value.enhanced) == (550, "5.6.0")
    assert steps.quota.daily_used("acme") == 0


async def test_unknown_project_is_a_temporary_failure(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    with pytest.raises(Rejected) as caught:
        await steps_for(store, clock).prepare(
            incoming(MESSAGE), Submitter("gone", "s"), "01X", clock.now()
        )
    assert (caught.value.code, caught.value.enhanced) == (451, "4.3.0")


async def test_project_views_are_cached_for_the_ttl(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    steps = steps_for(store, clock)
    for _ in range(3):
        await steps.prepare(incoming(MESSAGE), Submitter("acme", "s"), "01X", clock.now())
    assert store.calls["get_project"] == 1
    clock.advance(5)
    await steps.prepare(incoming(MESSAGE), Submitter("acme", "s"), "01X", clock.now())
    assert store.calls["get_project"] == 2


# -- the door ---------------------------------------------------------------------------------


class Pipeline:
    def __init__(self) -> None:
        self.accepted: list[tuple[str, Submitter | None]] = []

    async def accept(
        self,
        incoming: IncomingMessage,
        project: str = "default",
        *,
        submitter: Submitter | None = None,
    ) -> str:
        self.accepted.append((project, submitter))
        return "ID1"


def door_for(
    store: FakePlatformStore, clock: FakeClock, failures: int = 3
) -> tuple[SubmissionDoor, Pipeline]:
    pipeline = Pipeline()
    door = SubmissionDoor(
        store, pipeline, clock, AuthThrottle(failures, 300, clock), Metrics(), "mx.test"
    )
    return door, pipeline


async def test_authenticate_binds_the_session_to_the_project(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    store.add_smtp_credential(credential("app", "pw1", allowed_from=("example.com",)))
    door, pipeline = door_for(store, clock)
    assert await door.authenticate("PLAIN", "app", "pw1", session()) == "app"
    await door.close()
    assert store.touched == [("cred-app", clock.now())]
    await door.deliver(
        IncomingMessage(Envelope("a@example.com", ("r@x.example",)), b"", session("app"))
    )
    assert pipeline.accepted == [("acme", Submitter("acme", "smtp:app", ("example.com",)))]
    door.session_ended("S1")
    with pytest.raises(Rejected) as caught:
        await door.deliver(
            IncomingMessage(Envelope("a@example.com", ("r@x.example",)), b"", session("app"))
        )
    assert caught.value is AUTH_REQUIRED


async def test_wrong_or_unknown_credentials_fail(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    store.add_smtp_credential(credential("app", "pw1"))
    door, _ = door_for(store, clock, failures=10)
    assert await door.authenticate("PLAIN", "app", "wrong", session()) is None
    assert await door.authenticate("LOGIN", "nobody", "pw1", session()) is None
    assert await door.authenticate("LOGIN", "app", "", session()) is None


async def test_throttling_454_then_421_until_the_window_passes(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    store.add_smtp_credential(credential("app", "pw1"))
    door, _ = door_for(store, clock, failures=3)
    for _ in range(3):
        assert await door.authenticate("PLAIN", "app", "bad", session()) is None
    lookups = store.calls["smtp_credential_by_username"]
    with pytest.raises(Rejected) as first:
        await door.authenticate("PLAIN", "app", "pw1", session())
    assert first.value is THROTTLED
    assert (first.value.code, first.value.enhanced) == (454, "4.7.0")
    with pytest.raises(Rejected) as second:
        await door.authenticate("PLAIN", "app", "pw1", session())
    assert (second.value.code, second.value.enhanced) == (421, "4.7.0")
    assert store.calls["smtp_credential_by_username"] == lookups  # no guessing while throttled
    # another session from the same client: 454 again; another client is not affected
    with pytest.raises(Rejected) as other_session:
        await door.authenticate("PLAIN", "app", "pw1", session(sid="S2"))
    assert other_session.value.code == 454
    assert (
        await door.authenticate("PLAIN", "app", "pw1", session(peer="192.0.2.11", sid="S3"))
        == "app"
    )
    clock.advance(299)
    with pytest.raises(Rejected):
        await door.authenticate("PLAIN", "app", "pw1", session(sid="S4"))
    clock.advance(1)
    assert await door.authenticate("PLAIN", "app", "pw1", session(sid="S5")) == "app"


async def test_ip_credentials(store: FakePlatformStore, clock: FakeClock) -> None:
    store.create_project(project("wide"))
    store.add_ip_credential(IpCredential("ip1", "wide", "10.0.0.0/8", CREATED))
    store.add_ip_credential(IpCredential("ip2", "acme", "10.1.2.0/24", CREATED))
    store.add_ip_credential(IpCredential("ip3", "acme", "2001:db8::/32", CREATED))
    store.add_ip_credential(IpCredential("bad", "acme", "not a network", CREATED))
    door, pipeline = door_for(store, clock)
    await door.refresh_ip_credentials()
    assert door.check_sender("10.9.9.9", None) is None
    assert door.check_sender("192.0.2.1", None) is AUTH_REQUIRED
    assert door.check_sender("192.0.2.1", "someone") is None
    assert door.ip_credential("10.1.2.3").id == "ip2"  # type: ignore[union-attr]
    assert door.ip_credential("10.1.3.3").id == "ip1"  # type: ignore[union-attr]
    assert door.ip_credential("::ffff:10.1.2.3").id == "ip2"  # type: ignore[union-attr]
    assert door.ip_credential("2001:db8::5").id == "ip3"  # type: ignore[union-attr]
    assert door.ip_credential("2001:db9::5") is None
    await door.deliver(
        IncomingMessage(Envelope("a@example.com", ("r@x",)), b"", session(None, "10.1.2.3"))
    )
    assert pipeline.accepted == [("acme", Submitter("acme", "ip:10.1.2.0/24"))]
    with pytest.raises(Rejected) as caught:
        await door.deliver(
            IncomingMessage(Envelope("a@example.com", ("r@x",)), b"", session(None, "192.0.2.1"))
        )
    assert (caught.value.code, caught.value.enhanced, caught.value.text) == (
        530,
        "5.7.0",
        "Authentication required",
    )
    store.ips.clear()
    await door.refresh_ip_credentials()
    assert door.check_sender("10.9.9.9", None) is AUTH_REQUIRED


async def test_a_binding_from_before_starttls_does_not_survive(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    store.add_smtp_credential(credential("app", "pw1"))
    store.add_smtp_credential(replace(credential("other", "pw2"), id="cred-other"))
    door, _ = door_for(store, clock)
    await door.authenticate("PLAIN", "app", "pw1", session())
    assert door.submitter(session("other")) is None  # the session's user changed
    assert door.submitter(session(None)) is None
