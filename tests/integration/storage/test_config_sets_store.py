"""SES configuration sets on SQLite and PostgreSQL: sets and event destinations are stored
with SES's limits and names; the fan-out trigger sends an event of a message tagged with a set
(`ses:configuration-set:NAME`) to the webhooks named by that set's enabled destinations of a
matching type, and to no other; a webhook named by a destination leaves the project-wide
fan-out; deleting a set, a destination or the webhook stops the routing."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest
from sqlalchemy import insert
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.config_sets import (
    MAX_CONFIGURATION_SETS,
    MAX_EVENT_DESTINATIONS,
    ConfigurationSet,
    EventDestination,
)
from postroom.core.errors import AlreadyExists, InvalidInput, LimitExceeded, NotFound
from postroom.core.events import EventQuery
from postroom.core.ids import new_id
from postroom.core.types import NewMessage
from postroom.core.webhooks import Webhook
from postroom.pipeline.complete import complete_message
from postroom.pipeline.deliveries import deliveries_for
from postroom.storage import SqlMessageStore, open_store
from postroom.storage.platform_store import projects

LEASE = timedelta(minutes=1)


def live(clock: FakeClock, to: Sequence[str], tags: Sequence[str] = ()) -> NewMessage:
    message = make_message(clock, to=to, project="acme", status="queued", tags=tags)
    envelope = dataclasses.replace(message.envelope, rcpt_params=tuple({} for _ in to))
    return dataclasses.replace(message, envelope=envelope, deliveries=deliveries_for(envelope))


@pytest.fixture
async def store(target: str, clock: FakeClock) -> AsyncIterator[SqlMessageStore]:
    opened = open_store(target, clock, complete=complete_message)
    with opened._write.begin() as conn:
        for name in ("acme", "other"):
            conn.execute(insert(projects).values(id=name, name=name, mode="live", created_us=0))
    try:
        yield opened
    finally:
        await opened.close()


def hook(
    store: SqlMessageStore, clock: FakeClock, types: tuple[str, ...], project: str = "acme"
) -> Webhook:
    made = Webhook(
        new_id(clock.now()), project, "https://hooks.example/x", types, True, False, clock.now()
    )
    clock.advance(0.001)
    return store.webhooks.create(made, "sealed")


def destination(
    clock: FakeClock, set_name: str, name: str, matching: tuple[str, ...], webhook: Webhook
) -> EventDestination:
    return EventDestination(
        "acme",
        set_name,
        name,
        True,
        matching,
        webhook.id,
        f"arn:aws:sns:x:0:{webhook.id}",
        clock.now(),
    )


def rows(store: SqlMessageStore, webhook: Webhook) -> list[tuple[str | None, str]]:
    """(message id, event type) of the webhook's outbox rows, in order."""
    events = {e.id: e.type for e in store.events.query(webhook.project, EventQuery()).events}
    items = store.webhooks.outbox(webhook.project, webhook.id, limit=1000)
    return [(i.message_id, events[i.event_id]) for i in items]


async def test_events_of_a_sets_messages_reach_its_destinations_only(
    store: SqlMessageStore, clock: FakeClock
) -> None:
    sets = store.configuration_sets
    sets.create(ConfigurationSet("acme", "Marketing", clock.now()))
    sets.create(ConfigurationSet("acme", "billing", clock.now()))
    everything = hook(store, clock, ("send", "delivery", "bounce"))
    marketing = hook(store, clock, ("delivery",))  # its own types no longer count
    billing = hook(store, clock, ("send",))
    sets.add_destination(destination(clock, "marketing", "m", ("SEND", "BOUNCE"), marketing))
    sets.add_destination(destination(clock, "billing", "b", ("DELIVERY",), billing))

    tagged = live(
        clock, ["a@example.net"], tags=["campaign:spring", "ses:configuration-set:Marketing"]
    )
    plain = live(clock, ["b@example.net"])
    await store.add(tagged)
    await store.add(plain)
    assert rows(store, marketing) == [(tagged.id, "send")]
    assert rows(store, billing) == []  # DELIVERY only, and not its set
    assert rows(store, everything) == [(tagged.id, "send"), (plain.id, "send")]

    entries = {e.message_id: e for e in store.queue.claim("w", clock.now(), LEASE, 10)}
    store.queue.fail(entries[tagged.id].id, "w", clock.now(), "550", {"code": 550, "hard": True})
    store.queue.complete(entries[plain.id].id, "w", clock.now(), {"code": 250})
    assert rows(store, marketing) == [(tagged.id, "send"), (tagged.id, "bounce")]
    assert rows(store, billing) == []
    assert [t for _, t in rows(store, everything)] == ["send", "send", "bounce", "delivery"]

    # Disabled destination, deleted destination, deleted set: no more rows.
    sets.update_destination(
        dataclasses.replace(
            destination(clock, "Marketing", "m", ("SEND",), marketing), enabled=False
        )
    )
    await store.add(live(clock, ["c@example.net"], tags=["ses:configuration-set:marketing"]))
    assert len(rows(store, marketing)) == 2
    sets.update_destination(destination(clock, "marketing", "M", ("SEND",), marketing))
    again = live(clock, ["d@example.net"], tags=["ses:configuration-set:marketing"])
    await store.add(again)
    assert rows(store, marketing)[-1] == (again.id, "send")
    sets.delete("acme", "MARKETING")
    with pytest.raises(NotFound):
        sets.destinations("acme", "marketing")
    # The webhook is named by no destination now: back in the project-wide fan-out.
    last = live(clock, ["e@example.net"], tags=["ses:configuration-set:marketing"])
    await store.add(last)
    assert rows(store, marketing)[-1] == (again.id, "send")  # its types: delivery only
    store.webhooks.delete("acme", billing.id)
    assert sets.destinations("acme", "billing") == []


async def test_names_limits_and_projects(store: SqlMessageStore, clock: FakeClock) -> None:
    sets = store.configuration_sets
    made = sets.create(
        ConfigurationSet(
            "acme", "one", clock.now(), {"SendingOptions": {"SendingEnabled": False}}, (("k", "v"),)
        )
    )
    assert sets.get("acme", "ONE") == made and not made.sending_enabled
    with pytest.raises(AlreadyExists):
        sets.create(ConfigurationSet("acme", "One", clock.now()))
    with pytest.raises(NotFound, match="Configuration set <one> does not exist"):
        sets.get("other", "one")
    with pytest.raises(NotFound):
        sets.create(ConfigurationSet("nobody", "x", clock.now()))
    for i in range(1, MAX_CONFIGURATION_SETS):
        sets.create(ConfigurationSet("acme", f"s{i}", clock.now()))
    with pytest.raises(LimitExceeded):
        sets.create(ConfigurationSet("acme", "too-many", clock.now()))
    sets.create(ConfigurationSet("other", "too-many", clock.now()))  # per project
    assert len(sets.list("acme")) == MAX_CONFIGURATION_SETS

    target = hook(store, clock, ("send",))
    theirs = hook(store, clock, ("send",), project="other")
    with pytest.raises(InvalidInput) as foreign:
        sets.add_destination(destination(clock, "one", "d", ("SEND",), theirs))
    assert foreign.value.field == "SnsDestination.TopicArn"
    for i in range(MAX_EVENT_DESTINATIONS):
        sets.add_destination(destination(clock, "one", f"d{i}", ("SEND",), target))
    with pytest.raises(AlreadyExists):
        sets.add_destination(destination(clock, "one", "D0", ("SEND",), target))
    with pytest.raises(LimitExceeded):
        sets.add_destination(destination(clock, "one", "d-more", ("SEND",), target))
    with pytest.raises(NotFound):
        sets.add_destination(destination(clock, "none", "d", ("SEND",), target))
    with pytest.raises(NotFound):
        sets.delete_destination("acme", "one", "nope")
    sets.delete_destination("acme", "one", "D1")
    assert [d.name for d in sets.destinations("acme", "one")] == [
        f"d{i}" for i in range(MAX_EVENT_DESTINATIONS) if i != 1
    ]
