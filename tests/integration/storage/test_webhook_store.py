"""Webhooks' storage on SQLite and PostgreSQL: every event is fanned out into the outbox in the
transaction that writes it (by whichever writer: the batch writer in a thread or in its
process, the queue's reports), one row per enabled webhook of its project subscribed to its
type; claims lease rows and keep each message's order; failures are retried for a day, then
given up, and a webhook failing for a day is disabled with an event; one project never
reaches another's webhooks."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.errors import NotFound
from postroom.core.events import EventQuery, NewEvent
from postroom.core.ids import new_id
from postroom.core.types import NewMessage
from postroom.core.webhooks import Attempted, Webhook
from postroom.pipeline.complete import complete_message
from postroom.pipeline.deliveries import deliveries_for
from postroom.storage import SqlMessageStore, open_store
from postroom.storage import events as event_log
from postroom.storage.platform_store import projects
from postroom.storage.webhooks import SqlWebhookStore, webhook_outbox

LEASE = timedelta(minutes=2)
OK = Attempted(200, 3.0, None, "ok")
DOWN = Attempted(500, 2.0, "HTTP 500", "boom")


def live(clock: FakeClock, to: Sequence[str], project: str = "acme") -> NewMessage:
    message = make_message(clock, to=to, project=project, status="queued")
    envelope = dataclasses.replace(message.envelope, rcpt_params=tuple({} for _ in to))
    return dataclasses.replace(message, envelope=envelope, deliveries=deliveries_for(envelope))


@pytest.fixture(params=[False, True], ids=["writer-thread", "writer-process"])
async def store(
    target: str, clock: FakeClock, request: pytest.FixtureRequest
) -> AsyncIterator[SqlMessageStore]:
    opened = open_store(target, clock, writer_process=request.param, complete=complete_message)
    with opened._write.begin() as conn:
        for name in ("acme", "other"):
            conn.execute(insert(projects).values(id=name, name=name, mode="live", created_us=0))
    try:
        yield opened
    finally:
        await opened.close()


def hook(
    hooks: SqlWebhookStore,
    clock: FakeClock,
    types: tuple[str, ...],
    project: str = "acme",
    enabled: bool = True,
) -> Webhook:
    made = Webhook(
        new_id(clock.now()), project, "https://hooks.example/x", types, enabled, False, clock.now()
    )
    clock.advance(0.001)
    return hooks.create(made, "sealed")


def outbox(store: SqlMessageStore, webhook: Webhook) -> list[tuple[int, str | None, str]]:
    """(event id, message id, status) of the webhook's rows, in order."""
    items = store.webhooks.outbox(webhook.project, webhook.id, limit=1000)
    return [(i.event_id, i.message_id, i.status) for i in items]


async def test_events_fan_out_to_matching_enabled_webhooks_in_their_transaction(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    hooks = store.webhooks
    sends = hook(hooks, clock, ("send", "bounce"))
    deliveries = hook(hooks, clock, ("delivery",))
    off = hook(hooks, clock, ("send",), enabled=False)
    theirs = hook(hooks, clock, ("send", "delivery", "bounce"), project="other")
    message = live(clock, ("a@example.net", "b@example.net"))
    await store.add(message)
    await store.add(make_message(clock))  # captured: no event, no row
    events = store.events.query("acme", EventQuery()).events
    assert [e.type for e in events] == ["send", "send"]
    assert outbox(store, sends) == [(e.id, message.id, "pending") for e in events]
    assert outbox(store, deliveries) == [] and outbox(store, off) == []
    assert outbox(store, theirs) == []

    first, second = store.queue.claim("w", clock.now(), LEASE, 10)
    assert store.queue.complete(first.id, "w", clock.now(), {"code": 250})
    assert store.queue.fail(second.id, "w", clock.now(), "550", {"code": 550, "hard": True})
    later = store.events.query("acme", EventQuery(after=events[-1].id)).events
    assert [e.type for e in later] == ["delivery", "bounce"]
    assert outbox(store, deliveries) == [(later[0].id, message.id, "pending")]
    assert [row[0] for row in outbox(store, sends)] == [events[0].id, events[1].id, later[1].id]
    assert outbox(store, theirs) == []

    # An event whose transaction rolls back leaves no outbox row either.
    with pytest.raises(RuntimeError), store._write.begin() as conn:
        event_log.write(conn, [NewEvent("acme", "send", clock.now(), "x", "z@example.net")])
        raise RuntimeError("rolled back")
    assert len(outbox(store, sends)) == 3


async def test_claims_lease_rows_and_keep_each_messages_order(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    hooks = store.webhooks
    target = hook(hooks, clock, ("send",))
    m = live(clock, ("1@example.net", "2@example.net", "3@example.net"))
    n = live(clock, ("only@example.net",))
    await store.add(m)
    await store.add(n)
    rows = {(i.message_id, i.event_id): i for i in hooks.outbox("acme", target.id)}
    m1, m2, m3 = sorted((k for k in rows if k[0] == m.id), key=lambda k: k[1])

    claimed = hooks.claim("w1", clock.now(), LEASE, 10)
    assert [(c.item.message_id, c.item.event_id) for c in claimed] == [
        m1,
        (n.id, rows[next(k for k in rows if k[0] == n.id)].event_id),
    ]
    assert claimed[0].webhook == target and claimed[0].sealed_secret == "sealed"
    assert hooks.claim("w2", clock.now(), LEASE, 10) == []  # leased, and the rest wait
    assert hooks.report(claimed[0].item.id, "w2", clock.now(), "{}", OK) is None  # not its lease
    first = hooks.report(claimed[0].item.id, "w1", clock.now(), '{"a":1}', DOWN)
    assert first is not None and first.status == "pending" and not first.disabled
    hooks.report(claimed[1].item.id, "w1", clock.now(), "{}", OK)

    clock.advance(9)
    assert hooks.claim("w1", clock.now(), LEASE, 10) == []  # m1 waits 10 s; m2 waits for m1
    clock.advance(1)
    again = hooks.claim("w1", clock.now(), LEASE, 10)
    assert [(c.item.message_id, c.item.event_id) for c in again] == [m1]
    assert again[0].item.body == '{"a":1}' and again[0].item.attempts == 1
    assert hooks.report(again[0].item.id, "w1", clock.now(), '{"a":1}', OK) is not None
    assert [(c.item.event_id) for c in hooks.claim("w1", clock.now(), LEASE, 10)] == [m2[1]]

    # An expired lease makes a row due again for anyone.
    clock.advance(LEASE.total_seconds())
    taken = hooks.claim("w3", clock.now(), LEASE, 10)
    assert [c.item.event_id for c in taken] == [m2[1]]
    assert hooks.report(taken[0].item.id, "w3", clock.now(), "{}", OK) is not None
    assert [c.item.event_id for c in hooks.claim("w3", clock.now(), LEASE, 10)] == [m3[1]]

    log = hooks.requests("acme", target.id)
    assert [(r.status_code, r.succeeded) for r in log][-2:] == [(200, True), (500, False)]
    assert log[-1].response_body == "boom" and log[-1].request_body == '{"a":1}'


async def test_retried_for_a_day_then_given_up_and_the_webhook_disabled(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    hooks = store.webhooks
    failing = hook(hooks, clock, ("send",))
    watcher = hook(hooks, clock, ("webhook_disabled",))
    await store.add(live(clock, ("a@example.net",)))
    start = clock.now()
    attempts = 0
    outcome = None
    while True:
        claimed = hooks.claim("w", clock.now(), LEASE, 10)
        if claimed:
            (c,) = [x for x in claimed if x.webhook.id == failing.id]
            outcome = hooks.report(c.item.id, "w", clock.now(), "{}", DOWN)
            attempts += 1
            assert outcome is not None
            if outcome.status != "pending":
                break
        clock.advance(60)
    assert outcome is not None and outcome.status == "failed" and outcome.disabled
    assert clock.now() - start >= timedelta(hours=24)
    assert clock.now() - start < timedelta(hours=25)
    assert 20 < attempts < 40  # the backoff grows to an hour between attempts
    gone = hooks.get("acme", failing.id)
    assert not gone.enabled and gone.disabled_reason and "HTTP 500" in gone.disabled_reason
    disabled = store.events.query("acme", EventQuery(types=("webhook_disabled",))).events
    assert [(e.detail["webhook"], e.message_id) for e in disabled] == [(failing.id, None)]
    assert outbox(store, watcher) == [(disabled[0].id, None, "pending")]

    # A disabled webhook gets no new rows; enabling it again clears the streak.
    await store.add(live(clock, ("b@example.net",)))
    assert len(outbox(store, failing)) == 1
    back = hooks.update("acme", failing.id, enabled=True)
    assert back.enabled and back.failing_since is None and back.disabled_reason is None


async def test_a_success_ends_the_failure_streak(store: SqlMessageStore, clock: FakeClock) -> None:
    hooks = store.webhooks
    flaky = hook(hooks, clock, ("send",))
    await store.add(live(clock, ("a@example.net", "b@example.net")))
    (c,) = hooks.claim("w", clock.now(), LEASE, 10)
    hooks.report(c.item.id, "w", clock.now(), "{}", DOWN)
    assert hooks.get("acme", flaky.id).failing_since == clock.now()
    clock.advance(23 * 3600)
    (c,) = hooks.claim("w", clock.now(), LEASE, 10)
    hooks.report(c.item.id, "w", clock.now(), "{}", OK)
    assert hooks.get("acme", flaky.id).failing_since is None
    clock.advance(2 * 3600)
    (c,) = hooks.claim("w", clock.now(), LEASE, 10)
    outcome = hooks.report(c.item.id, "w", clock.now(), "{}", DOWN)
    assert outcome is not None and not outcome.disabled and hooks.get("acme", flaky.id).enabled


async def test_one_project_never_reaches_anothers_webhooks(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    hooks = store.webhooks
    mine = hook(hooks, clock, ("send",), project="other")
    await store.add(live(clock, ("a@example.net",), project="other"))
    (c,) = hooks.claim("w", clock.now(), LEASE, 10)
    hooks.report(c.item.id, "w", clock.now(), "{}", DOWN)
    (request,) = hooks.requests("other", mine.id)
    with pytest.raises(NotFound):
        hooks.get("acme", mine.id)
    with pytest.raises(NotFound):
        hooks.update("acme", mine.id, enabled=False)
    with pytest.raises(NotFound):
        hooks.requests("acme", mine.id)
    with pytest.raises(NotFound):
        hooks.resend("acme", mine.id, request.id, clock.now())
    with pytest.raises(NotFound):
        hooks.delete("acme", mine.id)
    with pytest.raises(NotFound):
        hooks.sealed_secret("acme", mine.id)
    assert hooks.list("acme") == [] and hooks.get("other", mine.id).enabled

    again = hooks.resend("other", mine.id, request.id, clock.now())
    assert again.body == "{}" and again.resend_of == request.id and again.message_id is None

    # A project's webhooks, outbox and request log go with it.
    with store._write.begin() as conn:
        conn.execute(delete(projects).where(projects.c.id == "other"))
        left = conn.execute(select(webhook_outbox.c.id)).all()
    assert hooks.list("other") == [] and left == []
