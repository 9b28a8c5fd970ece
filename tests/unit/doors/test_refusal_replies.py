"""The exact bytes of every refusal the doors and the pipeline produce, as the SMTP edge writes
them. Each refusal is provoked through the real code (quota, identities, headers, signing,
project lookup, AUTH throttling, the edge's own failures) and rendered by a real session, so
a change in how refusals are represented cannot change what a client reads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from postroom.core.clock import FakeClock
from postroom.core.types import Envelope, IncomingMessage, SessionInfo
from postroom.dns.dkim import generate_rsa
from postroom.doors.submission import SubmissionDoor
from postroom.metrics import Metrics
from postroom.pipeline.projects import ProjectDirectory
from postroom.pipeline.quota import QuotaTracker
from postroom.pipeline.signing import SignerCache
from postroom.pipeline.submission import SubmissionSteps, Submitter
from postroom.pipeline.throttle import AuthThrottle
from postroom.smtp.protocol import CheckAuth, CheckSender, Reply
from postroom.smtp.server import TEMPORARY_FAILURE
from tests.unit.pipeline.fakes import (
    FakePlatformStore,
    credential,
    dkim_key,
    domain,
    project,
)
from tests.unit.smtp.support import Client, make_policy

RSA = generate_rsa(1024)


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def session(auth_user: str | None = "app", sid: str = "S1") -> SessionInfo:
    return SessionInfo(
        door="submission",
        session_id=sid,
        peer_host="192.0.2.10",
        peer_port=40000,
        server_name="mx.test",
        auth_user=auth_user,
    )


def after_data(refusal: Any) -> bytes:
    """What the session writes when the pipeline refuses a message with `refusal`."""
    client = Client(ehlo=True)
    assert client.send_message(b"Subject: x\r\n\r\nx\r\n.\r\n") is not None
    outputs = client.session.message_result(refusal)
    return b"".join(o.data for o in outputs if isinstance(o, Reply))


def after_auth(*refusals: Any) -> bytes:
    """What one session writes when the door refuses its AUTH attempts with `refusals`."""
    client = Client(make_policy(auth_without_tls=True), ehlo=True)
    written = b""
    for refusal in refusals:
        assert any(
            isinstance(o, CheckAuth) for o in client.feed(b"AUTH PLAIN AGJvYgBzZWNyZXQ=\r\n")
        )
        outputs = client.session.auth_refused(refusal)
        written += b"".join(o.data for o in outputs if isinstance(o, Reply))
    return written


def after_mail(refusal: Any) -> bytes:
    """What the session writes when the door refuses a MAIL FROM with `refusal`."""
    client = Client(make_policy(check_sender=True), ehlo=True)
    assert client.feed(b"MAIL FROM:<app@example.com>\r\n") == [CheckSender("app@example.com", {})]
    outputs = client.session.sender_result(refusal)
    return b"".join(o.data for o in outputs if isinstance(o, Reply))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> FakePlatformStore:
    s = FakePlatformStore()
    s.create_project(project("acme", "live"))
    s.add_domain(domain("example.com", keys=(dkim_key(RSA, "rsa1"),)))
    return s


def steps_for(store: FakePlatformStore, clock: FakeClock) -> SubmissionSteps:
    return SubmissionSteps(
        ProjectDirectory(store, clock),
        QuotaTracker(store, clock, Metrics()),
        SignerCache(clock),
        "mx.test",
    )


async def refusal_of(
    steps: SubmissionSteps, data: bytes, submitter: Submitter, mail_from: str = "app@example.com"
) -> Any:
    incoming = IncomingMessage(Envelope(mail_from, ("r@example.net",)), data, session())
    with pytest.raises(Exception) as caught:
        await steps.prepare(incoming, submitter, "01X", FakeClock().now())
    return caught.value


MESSAGE = crlf("From: App <app@example.com>\nTo: r@example.net\nSubject: hi\n\nHello\n")
ACME = Submitter("acme", "smtp:app")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            crlf("To: r@example.net\n\nx\n"),
            b"550 5.6.0 The message has no From header field; a submitted message must say who"
            b" it is from (RFC 5322 section 3.6)\r\n",
        ),
        (
            crlf("From: a@example.com\nFrom: b@example.com\n\nx\n"),
            b"550 5.6.0 The message has more than one From header field (RFC 5322 section 3.6)\r\n",
        ),
        (
            crlf("From: nobody at all\n\nx\n"),
            b"550 5.6.0 The From header field cannot be parsed: it must hold one or more"
            b" addresses like Name <user@example.com>\r\n",
        ),
        (
            crlf("From: app@example.com\nSender: a@x.example, b@x.example\n\nx\n"),
            b"550 5.6.0 The Sender header field cannot be parsed: it must hold one address like"
            b" user@example.com\r\n",
        ),
        (
            crlf("From: app@example.com\nSubject: " + "x" * 1200 + "\n\nx\n"),
            b"550 5.6.0 A header line is longer than 998 characters and has no space to fold it"
            b" at (RFC 5322 section 2.1.1)\r\n",
        ),
        (
            crlf("From: app@example.com\n\n" + "y" * 1200 + "\n"),
            b"550 5.6.0 A body line is longer than 998 characters (RFC 5322 section 2.1.1);"
            b" encode long lines with quoted-printable or base64\r\n",
        ),
        (
            crlf("From: ceo@elsewhere.example\n\nx\n"),
            b"554 5.7.1 Message rejected: Email address is not verified. The following"
            b" identities failed the check: ceo@elsewhere.example, app@example.com\r\n",
        ),
    ],
)
async def test_content_and_identity_refusals(
    store: FakePlatformStore, clock: FakeClock, data: bytes, expected: bytes
) -> None:
    steps = steps_for(store, clock)
    submitter = ACME
    if b"elsewhere" in data:
        submitter = Submitter("acme", "smtp:app", ("ceo@elsewhere.example",))
    refusal = await refusal_of(steps, data, submitter)
    assert after_data(refusal) == expected


async def test_quota_refusals(store: FakePlatformStore, clock: FakeClock) -> None:
    from dataclasses import replace

    store.projects["acme"] = replace(store.projects["acme"], daily_quota=1)
    steps = steps_for(store, clock)
    await steps.prepare(
        IncomingMessage(Envelope("app@example.com", ("r@example.net",)), MESSAGE, session()),
        ACME,
        "01A",
        clock.now(),
    )
    daily = await refusal_of(steps, MESSAGE, ACME)
    assert after_data(daily) == b"454 4.7.0 Throttling failure: Daily message quota exceeded\r\n"

    store.projects["acme"] = replace(store.projects["acme"], daily_quota=None, rate_limit=1)
    steps = steps_for(store, clock)
    clock.advance(timedelta(days=2).total_seconds())
    await steps.prepare(
        IncomingMessage(Envelope("app@example.com", ("r@example.net",)), MESSAGE, session()),
        ACME,
        "01B",
        clock.now(),
    )
    rate = await refusal_of(steps, MESSAGE, ACME)
    assert after_data(rate) == b"454 4.7.0 Throttling failure: Maximum sending rate exceeded\r\n"


async def test_project_gone(store: FakePlatformStore, clock: FakeClock) -> None:
    steps = steps_for(store, clock)
    gone = await refusal_of(steps, MESSAGE, Submitter("ghost", "smtp:app"))
    assert after_data(gone) == (
        b"451 4.3.0 The project of these credentials no longer exists; contact your"
        b" administrator\r\n"
    )


async def test_unsignable_message(
    store: FakePlatformStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from postroom.dns import dkim as dkim_module

    def broken(self: object, message: bytes) -> bytes:
        raise dkim_module.DkimError("the body cannot be canonicalised")

    monkeypatch.setattr(dkim_module.DkimSigner, "sign", broken)
    steps = steps_for(store, clock)
    refusal = await refusal_of(steps, MESSAGE, ACME)
    assert after_data(refusal) == (
        b"554 5.6.0 The message cannot be DKIM-signed: the body cannot be canonicalised\r\n"
    )


def test_temporary_failure_of_the_edge() -> None:
    assert (
        after_data(TEMPORARY_FAILURE) == b"451 4.3.0 Temporary failure, please try again later\r\n"
    )
    assert after_mail(TEMPORARY_FAILURE) == (
        b"451 4.3.0 Temporary failure, please try again later\r\n"
    )


class _Pipeline:
    async def accept(self, *args: Any, **kwargs: Any) -> str:
        return "ID1"


async def test_submission_door_refusals(store: FakePlatformStore, clock: FakeClock) -> None:
    store.add_smtp_credential(credential("app", "pw1"))
    door = SubmissionDoor(
        store, _Pipeline(), clock, AuthThrottle(1, 300, clock), Metrics(), failure_delay=0.0
    )
    required = door.check_sender(session(None), "app@example.com", {})
    assert after_mail(required) == b"530 5.7.0 Authentication required\r\n"
    with pytest.raises(Exception) as at_delivery:
        await door.deliver(
            IncomingMessage(Envelope("app@example.com", ("r@x",)), MESSAGE, session(None))
        )
    assert after_data(at_delivery.value) == b"530 5.7.0 Authentication required\r\n"

    assert await door.authenticate("PLAIN", "app", "wrong", session(None)) is None
    with pytest.raises(Exception) as first:
        await door.authenticate("PLAIN", "app", "pw1", session(None))
    assert after_auth(first.value) == (
        b"454 4.7.0 Too many failed authentication attempts from your address; try again later\r\n"
    )
    with pytest.raises(Exception) as second:
        await door.authenticate("PLAIN", "app", "pw1", session(None))
    assert after_auth(first.value, second.value) == (
        b"454 4.7.0 Too many failed authentication attempts from your address; try again"
        b" later\r\n"
        b"421 4.7.0 mx.test Too many failed authentication attempts, closing connection\r\n"
    )
    await door.close()
