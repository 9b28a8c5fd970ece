"""The suppression list fed from the event log, on SQLite and PostgreSQL: hard bounces and
complaints add entries with the event id, soft bounces only past the policy (and expire),
other events and other projects add nothing, and the cursor survives: an entry removed by an
operator is not added again by old events, only by a new one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from postroom.core.clock import FakeClock
from postroom.core.errors import NotFound
from postroom.core.events import EventType, NewEvent
from postroom.core.suppression import SuppressionQuery
from postroom.storage import SqlMessageStore, resolve_target
from postroom.storage.events import write
from postroom.suppression.feed import SoftBouncePolicy, SuppressionFeed


@pytest.fixture
def engine(store: SqlMessageStore, target: str) -> Iterator[Engine]:
    made = create_engine(resolve_target(target).url)
    try:
        yield made
    finally:
        made.dispose()


def event(
    engine: Engine,
    clock: FakeClock,
    kind: EventType,
    recipient: str,
    project: str = "acme",
    **detail: Any,
) -> None:
    with engine.begin() as conn:
        write(conn, [NewEvent(project, kind, clock.now(), "m1", recipient, detail)])


def listed(store: SqlMessageStore, project: str = "acme") -> dict[str, tuple[str, Any]]:
    page = store.suppressions.query(project, SuppressionQuery(limit=1000))
    return {e.address: (e.reason, e.expires) for e in page.entries}


def test_hard_bounces_and_complaints(
    store: SqlMessageStore, clock: FakeClock, engine: Engine
) -> None:
    feed = SuppressionFeed(store.suppressions, clock)
    event(engine, clock, "send", "gone@example.net")
    event(engine, clock, "bounce", "Gone@example.net", hard=True, reason="userunknown",
          enhanced="5.1.1", code=550)  # fmt: skip
    event(engine, clock, "complaint", "angry@example.net", feedback_type="abuse")
    event(engine, clock, "delivery", "fine@example.net")
    event(engine, clock, "bounce", "theirs@example.net", project="other", hard=True)
    assert feed.run_all() == 3  # two in acme, one in the other project
    assert listed(store) == {
        "Gone@example.net": ("bounce", None),
        "angry@example.net": ("complaint", None),
    }
    gone = store.suppressions.get("acme", "gone@example.net")
    assert gone.event_id is not None and gone.detail == "userunknown 5.1.1 550"
    assert list(listed(store, "other")) == ["theirs@example.net"]
    # Removed by an operator: old events do not bring it back, a new hard bounce does.
    store.suppressions.remove("acme", "gone@example.net")
    assert SuppressionFeed(store.suppressions, clock).run_all() == 0  # a new feed, same cursor
    with pytest.raises(NotFound):
        store.suppressions.get("acme", "gone@example.net")
    event(engine, clock, "bounce", "gone@example.net", hard=True, reason="userunknown")
    assert feed.run_all() == 1 and "gone@example.net" in listed(store)


def test_soft_bounces_after_the_policy(
    store: SqlMessageStore, clock: FakeClock, engine: Engine
) -> None:
    policy = SoftBouncePolicy(soft_bounces=3, soft_window=7 * 86400, soft_expiry=30 * 86400)
    feed = SuppressionFeed(store.suppressions, clock, policy)
    event(engine, clock, "bounce", "full@example.net", hard=False, reason="mailboxfull")
    clock.advance(8 * 86400)  # outside the window of the next ones
    event(engine, clock, "bounce", "full@example.net", hard=False, reason="mailboxfull")
    event(engine, clock, "expired", "full@example.net", hard=False, reason="expired")
    event(engine, clock, "deferred", "full@example.net", hard=False)  # not a failure yet
    assert feed.run_all() == 0 and listed(store) == {}
    clock.advance(86400)
    event(engine, clock, "bounce", "full@example.net", hard=False, reason="mailboxfull")
    assert feed.run_all() == 1
    reason, expires = listed(store)["full@example.net"]
    assert reason == "bounce" and expires == clock.now() + timedelta(days=30)
    entry = store.suppressions.get("acme", "full@example.net")
    assert entry.detail.startswith("3 soft bounces within 7 days")
    off = SuppressionFeed(store.suppressions, clock, SoftBouncePolicy(soft_bounces=0))
    for _ in range(5):
        event(engine, clock, "bounce", "other-full@example.net", hard=False)
    assert off.run_all() == 0


def test_reasons_the_policy_makes_account_wide(
    store: SqlMessageStore, clock: FakeClock, engine: Engine
) -> None:
    policy = SoftBouncePolicy(account_reasons=frozenset({"complaint"}))
    feed = SuppressionFeed(store.suppressions, clock, policy)
    event(engine, clock, "complaint", "angry@example.net", feedback_type="abuse")
    event(engine, clock, "bounce", "gone@example.net", hard=True, reason="userunknown")
    assert feed.run_all() == 2
    # The complaint holds for every project; the hard bounce for its own only.
    assert listed(store, "*") == {"angry@example.net": ("complaint", None)}
    assert listed(store) == {"gone@example.net": ("bounce", None)}
    entry = store.suppressions.get("*", "angry@example.net")
    assert entry.detail == "project acme: abuse" and entry.event_id is not None
    found = store.suppressions.suppressed("other", ["angry@example.net", "gone@example.net"],
                                          clock.now())  # fmt: skip
    assert list(found) == ["angry@example.net"] and found["angry@example.net"].scope == "*"
