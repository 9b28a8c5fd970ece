"""The reputation guard on SQLite and PostgreSQL: counts of sends, hard bounces and complaints
per window and per day from the event log; a project crossing the thresholds is warned, then
paused (the project's pause set, the platform's change counter raised, a `reputation` event
each, in one transaction); a paused one stays paused until resumed, after which its rates count
from the resume; other projects and capture projects are never judged from this one's events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.errors import InvalidInput, NotFound
from postroom.core.events import EventQuery, NewEvent
from postroom.core.platform import Project
from postroom.core.reputation import Counts, Thresholds
from postroom.reputation.guard import ReputationGuard
from postroom.storage import SqlMessageStore
from postroom.storage.engine import open_platform_store
from postroom.storage.platform_store import SqlPlatformStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LIMITS = Thresholds(min_volume=100, window=7 * 86400)


@pytest.fixture
def platform(store: SqlMessageStore, target: str) -> Iterator[SqlPlatformStore]:
    opened = open_platform_store(target)
    for pid, mode in (("acme", "live"), ("other", "live"), ("sandbox", "capture")):
        opened.create_project(Project(pid, pid.title(), mode, T0))  # type: ignore[arg-type]
    try:
        yield opened
    finally:
        opened.close()


def emit(
    store: SqlMessageStore, clock: FakeClock, project: str, kind: str, n: int, **detail: Any
) -> None:
    store.queue.record_reports(
        [NewEvent(project, kind, clock.now(), "m1", f"r{i}@example.net", detail) for i in range(n)]  # type: ignore[arg-type]
    )


def reputation_events(store: SqlMessageStore, project: str = "acme") -> list[dict[str, Any]]:
    page = store.events.query(project, EventQuery(types=("reputation",)))
    return [dict(e.detail) for e in page.events]


def test_counts_per_window_and_day(
    store: SqlMessageStore, clock: FakeClock, platform: SqlPlatformStore
) -> None:
    emit(store, clock, "acme", "send", 10)
    emit(store, clock, "acme", "bounce", 2, hard=True)
    emit(store, clock, "acme", "bounce", 3, hard=False)  # soft: not in the bounce rate
    emit(store, clock, "acme", "complaint", 1)
    emit(store, clock, "other", "send", 50)
    clock.advance(86400 + 5)
    emit(store, clock, "acme", "send", 4)
    reputation = store.reputation
    assert reputation.counts("acme", T0) == Counts(14, 2, 1)
    assert reputation.counts("acme", T0 + timedelta(days=1)) == Counts(4, 0, 0)
    assert reputation.counts("acme", T0, T0 + timedelta(hours=1)) == Counts(10, 2, 1)
    assert reputation.daily("acme", T0) == [
        (T0, Counts(10, 2, 1)),
        (T0 + timedelta(days=1), Counts(4, 0, 0)),
    ]


def test_warn_pause_resume(
    store: SqlMessageStore, clock: FakeClock, platform: SqlPlatformStore
) -> None:
    guard = ReputationGuard(store.reputation, platform, clock, LIMITS)
    emit(store, clock, "acme", "send", 99)
    emit(store, clock, "acme", "bounce", 30, hard=True)
    assert guard.run_once() == []  # 99 sends: below the volume
    emit(store, clock, "acme", "send", 1)
    emit(store, clock, "sandbox", "send", 500)
    emit(store, clock, "sandbox", "bounce", 500, hard=True)  # capture: never judged
    emit(store, clock, "other", "send", 1000)
    before = platform.generation()
    assert guard.run_once() == [("acme", "paused")]  # 30 of 100 at once
    assert platform.generation() > before  # open sessions see the pause at their next MAIL
    paused = platform.get_project("acme")
    assert paused.paused == T0 and paused.pause_reason.startswith("bounce rate 30% over 7 days")
    assert platform.get_project("other").paused is None
    (event,) = reputation_events(store)
    assert (event["level"], event["sends"], event["bounces"]) == ("paused", 100, 30)
    assert reputation_events(store, "sandbox") == []

    clock.advance(3600)
    emit(store, clock, "acme", "send", 10_000)  # the rate is fine again: still paused
    assert guard.run_once() == [] and store.reputation.state("acme").level == "paused"
    clock.advance(1)
    with pytest.raises(InvalidInput, match="not paused"):
        guard.resume("other", "root")
    with pytest.raises(NotFound):
        guard.resume("nobody", "root")
    guard.resume("acme", "root")
    resumed = platform.get_project("acme")
    assert resumed.paused is None and resumed.pause_reason == ""
    assert reputation_events(store)[-1]["level"] == "resumed"
    assert reputation_events(store)[-1]["by"] == "root"
    state = store.reputation.state("acme")
    assert (state.level, state.since) == ("ok", clock.now())
    assert guard.run_once() == []  # the old bounces count no more

    clock.advance(60)
    emit(store, clock, "acme", "send", 200)
    emit(store, clock, "acme", "bounce", 12, hard=True)  # 6 % since the resume
    assert guard.run_once() == [("acme", "warning")]
    assert platform.get_project("acme").paused is None  # a warning does not pause
    emit(store, clock, "acme", "send", 1000)
    assert guard.run_once() == [("acme", "ok")]  # 1 % now: back to ok
    assert [e["level"] for e in reputation_events(store)] == [
        "paused", "resumed", "warning", "ok"
    ]  # fmt: skip
    report = guard.report(platform.get_project("acme"))
    assert report["level"] == "ok" and report["paused"] is None
    assert report["judged"]["sends"] == 1200 and report["judged"]["bounces"] == 12
    assert report["windows"]["24h"]["sends"] == 10_000 + 100 + 1200
    assert [d["day"] for d in report["daily"]] == ["2026-01-01"]


def test_a_deleted_project_takes_its_state_along(
    store: SqlMessageStore, clock: FakeClock, platform: SqlPlatformStore
) -> None:
    guard = ReputationGuard(store.reputation, platform, clock, LIMITS)
    emit(store, clock, "other", "send", 1000)
    emit(store, clock, "other", "complaint", 1)
    assert guard.run_once() == [("other", "warning")]
    platform.delete_project("other")
    assert "other" not in store.reputation.states()


async def test_counts_per_sending_domain(
    store: SqlMessageStore, clock: FakeClock, platform: SqlPlatformStore
) -> None:
    first = make_message(clock, project="acme", from_="App <app@Mail.Example.com>")
    second = make_message(clock, project="acme", from_="news@news.example.org")
    for message in (first, second):
        await store.add(message)
    when = clock.now()
    store.queue.record_reports(
        [NewEvent("acme", "send", when, first.id, f"a{i}@example.net") for i in range(4)]
        + [NewEvent("acme", "bounce", when, first.id, "a0@example.net", {"hard": True})]
        + [NewEvent("acme", "send", when, second.id, "b@example.net")]
        + [NewEvent("acme", "complaint", when, second.id, "b@example.net")]
        + [NewEvent("acme", "send", when, "gone-message", "c@example.net")]
    )
    assert store.reputation.by_sending_domain("acme", T0) == {
        "mail.example.com": Counts(4, 1, 0),
        "news.example.org": Counts(1, 0, 1),
    }
    assert store.reputation.by_sending_domain("other", T0) == {}
