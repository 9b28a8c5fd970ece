"""SubmissionDoor (AUTH, throttling, IP credentials, the session binding) against an in-memory
PlatformStore and a FakeClock."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from postroom.core.clock import FakeClock
from postroom.core.errors import Refusal, RefusalKind
from postroom.core.platform import IpCredential, SmtpCredential
from postroom.core.types import Envelope, IncomingMessage, SessionInfo
from postroom.doors.submission import AUTH_REQUIRED, REVOKED, THROTTLED, SubmissionDoor
from postroom.metrics import Metrics
from postroom.pipeline.projects import NO_PROJECT
from postroom.pipeline.submission import Submitter
from postroom.pipeline.throttle import AuthThrottle
from tests.unit.pipeline.fakes import CREATED, FakePlatformStore, credential, project


async def mail(door: SubmissionDoor, info: SessionInfo) -> Refusal | None:
    """The door's answer to MAIL FROM, awaited when it re-checks in the store."""
    answer = door.check_sender(info, "a@example.com", {})
    if answer is None or isinstance(answer, Refusal):
        return answer
    return await answer


def session(auth_user: str | None = None, peer: str = "192.0.2.10", sid: str = "S1") -> SessionInfo:
    return SessionInfo(
        door="submission",
        session_id=sid,
        peer_host=peer,
        peer_port=40000,
        server_name="mx.test",
        auth_user=auth_user,
    )


@pytest.fixture
def store() -> FakePlatformStore:
    s = FakePlatformStore()
    s.create_project(project("acme", "live"))
    return s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


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
    store: FakePlatformStore, clock: FakeClock, failures: int = 3, failure_delay: float = 0.0
) -> tuple[SubmissionDoor, Pipeline]:
    pipeline = Pipeline()
    door = SubmissionDoor(
        store,
        pipeline,
        clock,
        AuthThrottle(failures, 300, clock),
        Metrics(),
        failure_delay=failure_delay,
    )
    return door, pipeline


async def test_unknown_user_and_wrong_password_are_answered_after_the_same_delay(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    store.add_smtp_credential(credential("app", "pw1"))
    door, _ = door_for(store, clock, failures=10, failure_delay=30.0)
    # success is not delayed
    assert await asyncio.wait_for(door.authenticate("PLAIN", "app", "pw1", session()), 10) == "app"
    for user, password in (("app", "wrong"), ("nobody", "pw1")):
        attempt = asyncio.ensure_future(door.authenticate("PLAIN", user, password, session()))
        done, _ = await asyncio.wait({attempt}, timeout=0.3)
        assert not done, user  # neither failure is answered before the fixed delay
        attempt.cancel()
    await door.close()


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
    door.session_ended({"session_id": "S1", "door": "submission"})
    with pytest.raises(Refusal) as caught:
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


async def test_throttled_until_the_window_passes(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    store.add_smtp_credential(credential("app", "pw1"))
    door, _ = door_for(store, clock, failures=3)
    for _ in range(3):
        assert await door.authenticate("PLAIN", "app", "bad", session()) is None
    lookups = store.calls["smtp_credential_by_username"]
    with pytest.raises(Refusal) as first:
        await door.authenticate("PLAIN", "app", "pw1", session())
    assert first.value is THROTTLED
    assert (first.value.kind, first.value.temporary) == (RefusalKind.AUTH_THROTTLED, True)
    with pytest.raises(Refusal) as second:  # the session turns this one into 421 and a close
        await door.authenticate("PLAIN", "app", "pw1", session())
    assert second.value is THROTTLED
    assert store.calls["smtp_credential_by_username"] == lookups  # no guessing while throttled
    # another session from the same client is throttled too; another client is not affected
    with pytest.raises(Refusal) as other_session:
        await door.authenticate("PLAIN", "app", "pw1", session(sid="S2"))
    assert other_session.value is THROTTLED
    assert (
        await door.authenticate("PLAIN", "app", "pw1", session(peer="192.0.2.11", sid="S3"))
        == "app"
    )
    clock.advance(299)
    with pytest.raises(Refusal):
        await door.authenticate("PLAIN", "app", "pw1", session(sid="S4"))
    clock.advance(1)
    assert await door.authenticate("PLAIN", "app", "pw1", session(sid="S5")) == "app"


async def test_parallel_attempts_are_throttled_before_they_are_checked(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    """Issue 9: 100 parallel AUTH from one client were all checked under a limit of 5."""
    store.add_smtp_credential(credential("app", "pw1"))
    door, _ = door_for(store, clock, failures=5)
    results = await asyncio.gather(
        *(door.authenticate("PLAIN", "app", "bad", session(sid=f"S{i}")) for i in range(100)),
        return_exceptions=True,
    )
    assert store.calls["smtp_credential_by_username"] == 5
    assert results.count(None) == 5
    refusals = [r for r in results if isinstance(r, Refusal)]
    assert len(refusals) == 95 and all(r is THROTTLED for r in refusals)


async def test_successful_and_unjudged_attempts_are_not_counted(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    store.add_smtp_credential(credential("app", "pw1"))
    door, _ = door_for(store, clock, failures=2)
    for i in range(5):
        assert await door.authenticate("PLAIN", "app", "pw1", session(sid=f"S{i}")) == "app"
    lookup = store.smtp_credential_by_username

    def broken(username: str) -> SmtpCredential:
        raise RuntimeError("store down")

    store.smtp_credential_by_username = broken  # type: ignore[method-assign]
    for i in range(3):
        with pytest.raises(RuntimeError):
            await door.authenticate("PLAIN", "app", "pw1", session(sid=f"S9{i}"))
    store.smtp_credential_by_username = lookup  # type: ignore[method-assign]
    assert not door.throttle.blocked("192.0.2.10")
    assert await door.authenticate("PLAIN", "app", "bad", session(sid="S10")) is None
    assert not door.throttle.blocked("192.0.2.10")


async def test_ip_credentials(store: FakePlatformStore, clock: FakeClock) -> None:
    store.create_project(project("wide"))
    store.add_ip_credential(IpCredential("ip1", "wide", "10.0.0.0/8", CREATED))
    store.add_ip_credential(IpCredential("ip2", "acme", "10.1.2.0/24", CREATED))
    store.add_ip_credential(IpCredential("ip3", "acme", "2001:db8::/32", CREATED))
    store.add_ip_credential(IpCredential("bad", "acme", "not a network", CREATED))
    door, pipeline = door_for(store, clock)
    await door.refresh_ip_credentials()
    assert await mail(door, session(None, "10.9.9.9")) is None
    assert door.check_sender(session(None, "192.0.2.1"), "a@example.com", {}) is AUTH_REQUIRED
    # a user name the door never bound (no AUTH through it): refused at once
    assert door.check_sender(session("someone", "192.0.2.1"), "a@", {}) is AUTH_REQUIRED
    assert door.ip_credential("10.1.2.3").id == "ip2"  # type: ignore[union-attr]
    assert door.ip_credential("10.1.3.3").id == "ip1"  # type: ignore[union-attr]
    assert door.ip_credential("::ffff:10.1.2.3").id == "ip2"  # type: ignore[union-attr]
    assert door.ip_credential("2001:db8::5").id == "ip3"  # type: ignore[union-attr]
    assert door.ip_credential("2001:db9::5") is None
    await door.deliver(
        IncomingMessage(Envelope("a@example.com", ("r@x",)), b"", session(None, "10.1.2.3"))
    )
    assert pipeline.accepted == [("acme", Submitter("acme", "ip:10.1.2.0/24"))]
    with pytest.raises(Refusal) as caught:
        await door.deliver(
            IncomingMessage(Envelope("a@example.com", ("r@x",)), b"", session(None, "192.0.2.1"))
        )
    assert caught.value is AUTH_REQUIRED
    assert (caught.value.kind, caught.value.detail) == (
        RefusalKind.AUTH_REQUIRED,
        "Authentication required",
    )
    store.ips.clear()
    await door.refresh_ip_credentials()
    assert door.check_sender(session(None, "10.9.9.9"), "", {}) is AUTH_REQUIRED


async def test_a_binding_from_before_starttls_does_not_survive(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    store.add_smtp_credential(credential("app", "pw1"))
    store.add_smtp_credential(replace(credential("other", "pw2"), id="cred-other"))
    door, _ = door_for(store, clock)
    await door.authenticate("PLAIN", "app", "pw1", session())
    assert door.submitter(session("other")) is None  # the session's user changed
    assert door.submitter(session(None)) is None


async def test_mail_rechecks_the_credential_and_its_project(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    store.add_smtp_credential(credential("app", "pw1"))
    door, _ = door_for(store, clock)
    assert await door.authenticate("PLAIN", "app", "pw1", session()) == "app"
    assert await mail(door, session("app")) is None
    restricted = replace(credential("app", "pw1"), allowed_from=("example.com",))
    store.add_smtp_credential(restricted)
    assert await mail(door, session("app")) is None
    assert door.submitter(session("app")) == Submitter("acme", "smtp:app", ("example.com",))
    store.add_smtp_credential(replace(restricted, id="cred-new"))  # same name, new credential
    assert await mail(door, session("app")) is REVOKED
    store.smtp.clear()
    assert await mail(door, session("app")) is REVOKED
    store.add_smtp_credential(restricted)
    store.delete_project("acme")
    assert await mail(door, session("app")) is NO_PROJECT


async def test_mail_reads_the_rows_again_only_when_the_change_counter_moved(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    """Issue 9 item 5: the credential and its project are read again only after a change;
    otherwise MAIL costs one read of the counter."""
    store.add_smtp_credential(credential("app", "pw1"))
    store.add_smtp_credential(replace(credential("other", "pw2"), id="cred-other"))
    door, _ = door_for(store, clock)
    assert await door.authenticate("PLAIN", "app", "pw1", session()) == "app"
    lookups = store.calls["smtp_credential_by_username"]
    counted = store.calls["generation"]
    for _ in range(5):
        assert await mail(door, session("app")) is None
    assert store.calls["smtp_credential_by_username"] == lookups  # no row read
    assert store.calls["generation"] == counted + 5
    store.delete_smtp_credential("cred-other")  # a change elsewhere: read once, still fine
    assert await mail(door, session("app")) is None
    assert await mail(door, session("app")) is None
    assert store.calls["smtp_credential_by_username"] == lookups + 1
    store.delete_smtp_credential("cred-app")
    assert await mail(door, session("app")) is REVOKED
    assert await mail(door, session("app")) is REVOKED  # a refusal is never cached as good


async def test_ip_credentials_are_read_again_only_after_a_change(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    store.create_project(project("wide"))
    store.add_ip_credential(IpCredential("ip1", "wide", "10.0.0.0/8", CREATED))
    door, _ = door_for(store, clock)
    await door.refresh_ip_credentials()
    reads = []
    listing = store.list_ip_credentials

    def counted(project_id: str | None = None) -> list[IpCredential]:
        reads.append(project_id)
        return listing(project_id)

    store.list_ip_credentials = counted  # type: ignore[method-assign]
    for _ in range(3):
        assert await mail(door, session(None, "10.9.9.9")) is None
    assert reads == []
    store.delete_project("wide")  # a store without cascades: the credential stays
    assert await mail(door, session(None, "10.9.9.9")) is NO_PROJECT
    assert reads == [None]
    store.ips.clear()
    assert await mail(door, session(None, "10.9.9.9")) is AUTH_REQUIRED


async def test_parallel_correct_logins_from_one_client_all_pass(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    """A client's connection pool logs in 8 times at once under a limit of 5 failures: the
    attempts beyond the 5 in flight wait for them instead of being throttled (bench/
    submission_acceptance.py with 8 clients got 421 "Too many failed authentication
    attempts" with all passwords right)."""
    store.add_smtp_credential(credential("app", "pw1"))
    door, _ = door_for(store, clock, failures=5)
    results = await asyncio.wait_for(
        asyncio.gather(
            *(door.authenticate("PLAIN", "app", "pw1", session(sid=f"S{i}")) for i in range(8)),
            return_exceptions=True,
        ),
        10,
    )
    assert results == ["app"] * 8
    assert not door.throttle.blocked("192.0.2.10")
    # and a mix: 3 wrong, then 8 right at once: 2 failures of room are left, none is used
    for i in range(3):
        assert await door.authenticate("PLAIN", "app", "bad", session(sid=f"B{i}")) is None
    mixed = await asyncio.wait_for(
        asyncio.gather(
            *(door.authenticate("PLAIN", "app", "pw1", session(sid=f"M{i}")) for i in range(8))
        ),
        10,
    )
    assert mixed == ["app"] * 8
    await door.close()
