"""SubmissionSteps (checks, fix-ups, DKIM, quota) against an in-memory PlatformStore and a
FakeClock. The door (AUTH, IP credentials) is tested in tests/unit/doors."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import dkim
import pytest

from postroom.core.clock import FakeClock
from postroom.core.errors import Refusal, RefusalKind
from postroom.core.spooled import SpooledData, read_spooled
from postroom.core.types import Envelope, IncomingMessage, SessionInfo
from postroom.dns.dkim import DkimSigner, dns_record, generate_ed25519, generate_rsa
from postroom.metrics import Metrics
from postroom.pipeline import submission as submission_module
from postroom.pipeline.projects import ProjectDirectory
from postroom.pipeline.quota import QuotaTracker
from postroom.pipeline.signing import SignerCache
from postroom.pipeline.submission import Prepared, SubmissionSteps, Submitter
from tests.dnszone import _ensure_dkimpy_ed25519

from .fakes import (
    FakePlatformStore,
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
    s.add_address_identity(verified_address("Person@Gmail.example"))
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
    with pytest.raises(Refusal) as caught:
        await steps_for(store, clock).prepare(
            incoming(data, mail_from), Submitter("acme", "smtp:app", allowed), "01X", clock.now()
        )
    assert caught.value.kind is RefusalKind.IDENTITY_NOT_VERIFIED
    # Only the envelope sender at fault (not a header's author): the SES API's MAIL FROM case.
    envelope_only = failed == mail_from and mail_from not in head
    assert not caught.value.temporary
    assert caught.value.field == ("MAIL FROM" if envelope_only else "From")
    assert caught.value.detail == UNVERIFIED + failed


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
    with pytest.raises(Refusal) as caught:
        await steps.prepare(
            incoming(crlf("Subject: x\n\nbody\n")), Submitter("acme", "s"), "01X", clock.now()
        )
    assert (caught.value.kind, caught.value.field) == (RefusalKind.CONTENT_INVALID, "From")
    assert steps.quota.daily_used("acme") == 0


async def test_unknown_project_is_a_temporary_failure(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    with pytest.raises(Refusal) as caught:
        await steps_for(store, clock).prepare(
            incoming(MESSAGE), Submitter("gone", "s"), "01X", clock.now()
        )
    assert caught.value.kind is RefusalKind.PROJECT_GONE and caught.value.temporary


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


SPOOLED_CASES = {
    # the header section ends with an empty line: the body stays in the file
    "streamed": (MESSAGE + b"  spaces \t\r\n\r\n\r\n", True),
    # a line that is not a field ends the header section: the whole message is read
    "not a field": (crlf("From: App <app@example.com>\nSubject: hi\nnot a field\n\nHi\n"), False),
    # no empty line at all
    "headers only": (crlf("From: App <app@example.com>\nSubject: hi\n"), False),
}


@pytest.mark.parametrize("case", list(SPOOLED_CASES))
async def test_a_spooled_message_is_signed_like_the_same_message_in_memory(
    store: FakePlatformStore, clock: FakeClock, tmp_path: Path, case: str
) -> None:
    data, streamed = SPOOLED_CASES[case]
    path = tmp_path / "spooled.eml"
    path.write_bytes(b"junk before" + data + b"junk after")
    spooled = SpooledData(str(path), len(data), offset=len(b"junk before"))
    steps = steps_for(store, clock)
    in_memory = await steps.prepare(
        incoming(data), Submitter("acme", "smtp:app"), "01X", clock.now()
    )
    from_file = await steps.prepare(
        replace(incoming(b""), spooled=spooled), Submitter("acme", "smtp:app"), "01X", clock.now()
    )
    assert (from_file.body is not None) == streamed
    whole = from_file.data + (read_spooled(from_file.body) if from_file.body else b"")
    assert whole == in_memory.data  # same fix-ups, same signatures (same clock)
    _ensure_dkimpy_ed25519()
    assert dkim.verify(whole, dnsfunc=dnsfunc)
    assert dkim.DKIM(whole).verify(idx=1, dnsfunc=dnsfunc)


async def test_a_spooled_body_line_over_998_octets_is_refused(
    store: FakePlatformStore, clock: FakeClock, tmp_path: Path
) -> None:
    data = MESSAGE + b"y" * 500 + b"z" * 499 + b"\r\nshort\r\n"
    path = tmp_path / "spooled.eml"
    path.write_bytes(data)
    message = replace(incoming(b""), spooled=SpooledData(str(path), len(data)))
    with pytest.raises(Refusal) as refused:
        await steps_for(store, clock).prepare(
            message, Submitter("acme", "smtp:app"), "01X", clock.now()
        )
    assert refused.value.kind is RefusalKind.CONTENT_INVALID
    assert refused.value.field == "body"


async def test_prepare_many_answers_each_message_and_signs_them(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    """The messages of one request: each its own Prepared or Refusal, in order; the
    reservations of the refused ones count nothing."""
    store.update_project(project("acme", "live", daily_quota=3))
    steps = steps_for(store, clock)
    stranger = crlf("From: ceo@elsewhere.example\nTo: r@example.net\nSubject: x\n\nHi\n")
    batch = [
        incoming(MESSAGE),
        incoming(stranger, mail_from="ceo@elsewhere.example"),
        incoming(MESSAGE, rcpts=("a@example.net", "b@example.net")),
        incoming(MESSAGE),  # the fourth send of 3
    ]
    ids = ["01A", "01B", "01C", "01D"]
    outcomes = await steps.prepare_many(batch, Submitter("acme", "api:k"), ids, clock.now())
    first, second, third, fourth = outcomes
    assert isinstance(second, Refusal) and second.kind is RefusalKind.IDENTITY_NOT_VERIFIED
    assert isinstance(fourth, Refusal) and fourth.kind is RefusalKind.DAILY_QUOTA
    for prepared, message_id in ((first, b"01a"), (third, b"01c")):
        assert not isinstance(prepared, Refusal) and prepared.status == "queued"
        assert prepared.data.count(b"DKIM-Signature:") == 2
        assert b"Message-ID: <" + message_id + b"@example.com>\r\n" in prepared.data
        assert dkim.verify(prepared.data, dnsfunc=dnsfunc)
    assert steps.quota.daily_used("acme") == 3


async def test_prepare_many_counts_nothing_when_a_check_fails_unexpectedly(
    store: FakePlatformStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = steps_for(store, clock)
    checks = 0
    real = steps._check

    async def failing_second(*args: object, **kwargs: object) -> object:
        nonlocal checks
        checks += 1
        if checks == 2:
            raise RuntimeError("the platform store went away")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(steps, "_check", failing_second)
    with pytest.raises(RuntimeError):
        await steps.prepare_many(
            [incoming(MESSAGE), incoming(MESSAGE)],
            Submitter("acme", "api:k"),
            ["01A", "01B"],
            clock.now(),
        )
    assert steps.quota.daily_used("acme") == 0


async def test_messages_signed_at_once_each_get_their_own_signature_or_refusal(
    store: FakePlatformStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions preparing at the same time share the RSA signing thread (a batch at a time):
    each message still gets its own signature, and one that cannot be signed is refused
    alone, its reservation released."""
    real_sign = submission_module.sign

    def sign(data: bytes, signers: list[DkimSigner]) -> bytes:
        if b"Subject: unsignable" in data:
            raise Refusal(RefusalKind.NOT_SIGNABLE, "The message cannot be DKIM-signed: test")
        return real_sign(data, signers)

    monkeypatch.setattr(submission_module, "sign", sign)
    store.update_project(project("acme", "live", daily_quota=10))
    steps = steps_for(store, clock)
    bad = MESSAGE.replace(b"Subject: hi", b"Subject: unsignable")
    messages = [MESSAGE, MESSAGE, bad, MESSAGE, MESSAGE]
    outcomes = await asyncio.gather(
        *(
            steps.prepare(incoming(m), Submitter("acme", "smtp:app"), f"01M{i}", clock.now())
            for i, m in enumerate(messages)
        ),
        return_exceptions=True,
    )
    refused = outcomes[2]
    assert isinstance(refused, Refusal) and refused.kind is RefusalKind.NOT_SIGNABLE
    for i, prepared in enumerate(outcomes):
        if i == 2:
            continue
        assert isinstance(prepared, Prepared), prepared
        assert f"Message-ID: <01m{i}@example.com>\r\n".encode() in prepared.data
        assert dkim.verify(prepared.data, dnsfunc=dnsfunc)
    assert steps.quota.daily_used("acme") == 4
