"""Webhook delivery end to end on SQLite and PostgreSQL, to a real HTTP receiver on loopback:
it fails (500), times out, then recovers, and gets exactly the expected events, each signed
(checked with the README's own Python and JavaScript verification code), in order per message;
a restart (the store reopened, another worker, a dead worker's leases) loses nothing. The
backoff runs on a fake clock: nothing sleeps for it."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert
from tests.integration.storage.factory import make_message
from tests.webhook_receiver import Received, Receiver

from postroom.core.clock import FakeClock
from postroom.core.events import Event, EventQuery
from postroom.core.types import NewMessage
from postroom.events.signing import verify
from postroom.events.webhook_sender import SenderSettings, WebhookSender
from postroom.events.webhook_service import WebhookService
from postroom.events.webhook_worker import WebhookWorker, WorkerSettings, mail_from_store
from postroom.pipeline.complete import complete_message
from postroom.pipeline.deliveries import deliveries_for
from postroom.storage import SqlMessageStore, open_store
from postroom.storage.platform_store import projects
from postroom.storage.sealing import SecretBox

README = Path(__file__).resolve().parents[3] / "README.md"
LEASE = timedelta(minutes=2)
TYPES = ["send", "delivery", "bounce"]


def live(clock: FakeClock, to: Sequence[str]) -> NewMessage:
    message = make_message(clock, to=to, project="acme", status="queued", subject="Hi there")
    envelope = dataclasses.replace(message.envelope, rcpt_params=tuple({} for _ in to))
    return dataclasses.replace(message, envelope=envelope, deliveries=deliveries_for(envelope))


def open_(target: str, clock: FakeClock) -> SqlMessageStore:
    return open_store(target, clock, complete=complete_message)


@pytest.fixture
async def store(target: str, clock: FakeClock) -> AsyncIterator[SqlMessageStore]:
    opened = open_(target, clock)
    with opened._write.begin() as conn:
        conn.execute(insert(projects).values(id="acme", name="Acme", mode="live", created_us=0))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as opened:
        yield opened


def worker(
    store: SqlMessageStore,
    box: SecretBox,
    clock: FakeClock,
    client: httpx.AsyncClient,
    owner: str = "w1",
) -> WebhookWorker:
    sender = WebhookSender(client, clock, SenderSettings(timeout=0.5, allow_private=True))
    settings = WorkerSettings(owner=owner, lease=LEASE, hostname="postroom.test")
    return WebhookWorker(
        store.webhooks, store.events, mail_from_store(store), box, sender, clock, settings
    )


async def make_events(store: SqlMessageStore, clock: FakeClock) -> tuple[NewMessage, NewMessage]:
    """Message m to a and b, n to c: a delivered, b bounced, c delivered (six events)."""
    m = live(clock, ("a@example.net", "b@example.net"))
    n = live(clock, ("c@example.net",))
    await store.add(m)
    await store.add(n)
    entries = {e.recipient: e for e in store.queue.claim("q", clock.now(), LEASE, 10)}
    ok = {"code": 250, "enhanced": "2.0.0", "text": "queued as 1", "remote_ip": "192.0.2.1"}
    store.queue.complete(entries["a@example.net"].id, "q", clock.now(), ok)
    gone = {
        "code": 550,
        "enhanced": "5.1.1",
        "text": "no such user",
        "remote_mta": "mx.example.net",
        "remote_ip": "192.0.2.1",
        "reason": "userunknown",
        "hard": True,
    }
    store.queue.fail(entries["b@example.net"].id, "q", clock.now(), "550", gone)
    store.queue.complete(entries["c@example.net"].id, "q", clock.now(), ok)
    return m, n


async def run_until_done(w: WebhookWorker, store: SqlMessageStore, clock: FakeClock) -> int:
    """Drain, moving the fake clock on, until no row is pending (bounded)."""
    for rounds in range(200):
        await w.drain()
        hooks = store.webhooks.list("acme")
        if all(store.webhooks.counts("acme", h.id)["pending"] == 0 for h in hooks):
            return rounds
        clock.advance(30)
    raise AssertionError("the outbox did not drain")


def check_order(requests: list[Received], events: dict[int, Event]) -> None:
    """No request of an event went out before every earlier event of its message had been
    answered 2xx."""
    done: set[int] = set()
    for request in requests:
        event = events[int(request.headers["postroom-event-id"])]
        earlier = {
            e.id for e in events.values() if e.message_id == event.message_id and e.id < event.id
        }
        assert earlier <= done, f"event {event.id} went out before {sorted(earlier - done)}"
        if request.answer == 200:
            done.add(event.id)


def readme_code(marker: str) -> str:
    text = README.read_text()
    found = re.search(rf"<!-- {marker} -->\n```\w+\n(.*?)```", text, re.S)
    assert found, f"README has no {marker} block"
    return found.group(1)


async def test_fails_times_out_recovers_signed_in_order_exactly_the_events(
    store: SqlMessageStore,
    clock: FakeClock,
    receiver: Receiver,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    receiver.script = lambda n: 500 if n == 0 else "hang" if n == 1 else 200
    box = SecretBox.load_or_create(tmp_path)
    service = WebhookService(store.webhooks, box, clock, allow_private=True)
    hook, secret = service.create("acme", {"url": receiver.url, "types": TYPES})
    m, n = await make_events(store, clock)
    events = {e.id: e for e in store.events.query("acme", EventQuery()).events}
    assert len(events) == 6

    await run_until_done(worker(store, box, clock, client), store, clock)

    answers = [r.answer for r in receiver.requests]
    assert answers[:2] == [500, "hang"] and set(answers[2:]) == {200}
    delivered = [int(r.headers["postroom-event-id"]) for r in receiver.requests if r.answer == 200]
    assert sorted(delivered) == sorted(events)  # every event once, nothing else
    check_order(receiver.requests, events)
    for request in receiver.requests:
        assert request.method == "POST" and request.path == "/hook"
        assert request.headers["postroom-webhook-id"] == hook.id
        assert request.headers["content-type"] == "application/json"
        stamp = int(request.headers["postroom-timestamp"])
        assert verify(secret, request.headers, request.body, now=stamp)
        assert not verify(secret, request.headers, request.body + b" ", now=stamp)
        assert not verify("whsec_other", request.headers, request.body, now=stamp)
        assert not verify(secret, request.headers, request.body, now=stamp + 301)  # a replay

    bodies = {int(r.headers["postroom-event-id"]): json.loads(r.body) for r in receiver.requests}
    (bounce,) = [b for b in bodies.values() if b["type"] == "bounce"]
    assert bounce["eventType"] == "Bounce" and bounce["reason"] == "userunknown"
    assert bounce["mail"]["messageId"] == m.id
    assert bounce["mail"]["source"] == m.envelope.mail_from
    assert bounce["mail"]["destination"] == ["a@example.net", "b@example.net"]
    assert "headers" not in bounce["mail"]
    assert bounce["bounce"]["bounceType"] == "Permanent"
    assert bounce["bounce"]["bounceSubType"] == "NoEmail"
    assert bounce["bounce"]["bouncedRecipients"] == [
        {
            "emailAddress": "b@example.net",
            "action": "failed",
            "status": "5.1.1",
            "diagnosticCode": "smtp; 550 5.1.1 no such user",
        }
    ]
    assert bounce["bounce"]["reportingMTA"] == "dsn; postroom.test"
    assert bounce["bounce"]["remoteMtaIp"] == "192.0.2.1"
    deliveries = [b for b in bodies.values() if b["type"] == "delivery"]
    assert {d["delivery"]["recipients"][0] for d in deliveries} == {
        "a@example.net",
        "c@example.net",
    }
    assert all(d["eventType"] == "Delivery" and d["reason"] is None for d in deliveries)
    assert deliveries[0]["delivery"]["smtpResponse"] == "250 2.0.0 queued as 1"
    assert {b["mail"]["messageId"] for b in bodies.values() if b["type"] == "send"} == {m.id, n.id}

    # The request log: the failure, the timeout and the successes, newest first.
    log = service.requests("acme", hook.id, limit=100)
    assert [r.status_code for r in reversed(log)][:2] == [500, None]
    assert "no answer within 0.5 seconds" in (log[-2].error or "")
    assert log[0].succeeded and log[0].response_body == "received"

    # The README's verification code, run as written, accepts the real requests.
    namespace: dict[str, Any] = {}
    exec(readme_code("webhook-verify-python"), namespace)
    check = namespace["verify_postroom_signature"]
    for request in receiver.requests:
        namespace["time"] = _FrozenTime(int(request.headers["postroom-timestamp"]))
        assert check(secret, request.headers, request.body) is True
        assert check(secret, request.headers, request.body.replace(b"a", b"b")) is False
    namespace["time"] = _FrozenTime(int(receiver.requests[0].headers["postroom-timestamp"]) + 600)
    assert check(secret, receiver.requests[0].headers, receiver.requests[0].body) is False

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the README's JavaScript was not run")
    cases = [
        {"headers": r.headers, "body": r.body.decode(), "now": r.headers["postroom-timestamp"]}
        for r in receiver.requests
    ]
    script = readme_code("webhook-verify-javascript") + _NODE_CHECK
    out = subprocess.run(
        [node, "-e", script],
        input=json.dumps({"secret": secret, "cases": cases}),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    results = json.loads(out.stdout)
    assert results == [[True, False]] * len(cases)


class _FrozenTime:
    """Stands for the `time` module inside the README's snippet: the receiver's clock."""

    def __init__(self, now: int) -> None:
        self.now = now

    def time(self) -> float:
        return float(self.now)


_NODE_CHECK = """
const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const out = input.cases.map((c) => {
  Date.now = () => Number(c.now) * 1000;
  const body = Buffer.from(c.body, "utf8");
  return [
    verifyPostroomSignature(input.secret, c.headers, body),
    verifyPostroomSignature(input.secret, c.headers, Buffer.concat([body, Buffer.from(" ")])),
  ];
});
process.stdout.write(JSON.stringify(out));
"""


async def test_a_restart_loses_nothing(
    target: str,
    store: SqlMessageStore,
    clock: FakeClock,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    receiver.script = lambda n: 500 if n == 0 else 200
    box = SecretBox.load_or_create(tmp_path)
    service = WebhookService(store.webhooks, box, clock, allow_private=True)
    hook, secret = service.create("acme", {"url": receiver.url, "types": TYPES})
    await make_events(store, clock)
    events = {e.id: e for e in store.events.query("acme", EventQuery()).events}
    async with httpx.AsyncClient() as first_client:
        first = worker(store, box, clock, first_client)
        await first.drain()  # one message's first request fails, the other's events go through
    answers = [r.answer for r in receiver.requests]
    assert answers[0] == 500 and set(answers[1:]) == {200} and len(answers) < 6
    clock.advance(10)
    # A worker that dies holding leases (claimed, never reported).
    dead = store.webhooks.claim("dead", clock.now(), LEASE, 10)
    assert dead
    await store.close()

    reopened = open_(target, clock)
    try:
        async with httpx.AsyncClient() as second_client:
            second = worker(reopened, SecretBox.load_or_create(tmp_path), clock, second_client)
            assert await second.drain() == 0  # the leases are still held
            clock.advance(LEASE.total_seconds())
            await run_until_done(second, reopened, clock)
    finally:
        await reopened.close()
    delivered = [int(r.headers["postroom-event-id"]) for r in receiver.requests if r.answer == 200]
    assert sorted(delivered) == sorted(events)
    check_order(receiver.requests, events)
    for r in receiver.requests:
        assert verify(secret, r.headers, r.body, now=int(r.headers["postroom-timestamp"]))
    assert hook.id == receiver.requests[-1].headers["postroom-webhook-id"]


async def test_headers_when_asked_and_a_resend_repeats_the_body(
    store: SqlMessageStore,
    clock: FakeClock,
    receiver: Receiver,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    box = SecretBox.load_or_create(tmp_path)
    service = WebhookService(store.webhooks, box, clock, allow_private=True)
    hook, _ = service.create(
        "acme", {"url": receiver.url, "types": ["send"], "include_headers": True}
    )
    m = live(clock, ("a@example.net",))
    await store.add(m)
    w = worker(store, box, clock, client)
    await run_until_done(w, store, clock)
    (request,) = receiver.requests
    mail = json.loads(request.body)["mail"]
    assert {"name": "Subject", "value": "Hi there"} in mail["headers"]
    assert mail["headersTruncated"] is False
    assert mail["commonHeaders"]["subject"] == "Hi there"
    assert mail["commonHeaders"]["to"] == ["a@example.net"]

    (logged,) = service.requests("acme", hook.id)
    clock.advance(5)
    service.resend("acme", hook.id, logged.id)
    await run_until_done(w, store, clock)
    assert len(receiver.requests) == 2
    assert receiver.requests[1].body == request.body
    assert (
        receiver.requests[1].headers["postroom-timestamp"] != request.headers["postroom-timestamp"]
    )
