"""Quotas: daily (rolling 24 h, counted in the store with each message) and per second (in
memory), per recipient; the gauges computed when read, on the injected clock.

`FakePlatformStore.store_sends` stands for the message store's writer, which records a
message's sends in its transaction (storage/batch.py; tested on SQLite and PostgreSQL in
tests/integration/storage/test_platform_store.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from postroom.core.clock import FakeClock
from postroom.core.errors import Refusal, RefusalKind
from postroom.core.platform import Project
from postroom.metrics import Metrics
from postroom.pipeline import quota as quota_module
from postroom.pipeline.quota import (
    DAILY_EXCEEDED,
    RATE_EXCEEDED,
    QuotaTracker,
    Reservation,
    read_usage,
    sends_of,
)

from .fakes import FakePlatformStore, project


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> FakePlatformStore:
    return FakePlatformStore()


def stored(store: FakePlatformStore, clock: FakeClock, quota: QuotaTracker, r: Reservation) -> None:
    """The acceptance pipeline's end: the message and its sends stored, then committed."""
    store.store_sends(r.project, clock.now(), r.recipients)
    quota.commit(r)


async def send(
    store: FakePlatformStore, clock: FakeClock, quota: QuotaTracker, p: Project, n: int
) -> None:
    stored(store, clock, quota, await quota.reserve(p, n))


def gauge(metrics: Metrics, name: str, project_id: str = "acme") -> float | None:
    value = metrics.registry.get_sample_value(name, {"project": project_id})
    return value


def test_a_send_is_a_distinct_recipient() -> None:
    assert sends_of(["a@x.example", "b@x.example", "a@x.example"]) == 2


async def test_daily_quota_counts_recipients_over_a_rolling_day(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    metrics = Metrics()
    quota = QuotaTracker(store, clock, metrics, sync_interval=5)
    acme = project(daily_quota=5)
    await send(store, clock, quota, acme, 2)
    await send(store, clock, quota, acme, 3)
    with pytest.raises(Refusal) as caught:
        await quota.reserve(acme, 1)
    assert caught.value is DAILY_EXCEEDED
    assert (caught.value.kind, caught.value.detail, caught.value.temporary) == (
        RefusalKind.DAILY_QUOTA,
        "Throttling failure: Daily message quota exceeded",
        True,
    )
    assert quota.daily_used("acme") == 5
    assert read_usage(store, acme, clock.now()) == (5, 5, None)  # what usage shows
    assert gauge(metrics, "postroom_quota_daily_used") == 5
    assert gauge(metrics, "postroom_quota_daily_limit") == 5
    clock.advance(60)
    with pytest.raises(Refusal):  # counted again from the store: the same 5
        await quota.reserve(acme, 1)
    assert quota.daily_used("acme") == 5
    clock.advance(24 * 3600)
    await send(store, clock, quota, acme, 5)


async def test_other_processes_sends_count(store: FakePlatformStore, clock: FakeClock) -> None:
    quota = QuotaTracker(store, clock, Metrics())
    store.store_sends("acme", clock.now(), 9)
    with pytest.raises(Refusal):
        await quota.reserve(project(daily_quota=10), 2)
    await quota.reserve(project(daily_quota=10), 1)


async def test_a_released_reservation_does_not_count(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    quota = QuotaTracker(store, clock, Metrics())
    acme = project(daily_quota=2)
    quota.release(await quota.reserve(acme, 2))
    assert quota.daily_used("acme") == 0
    await send(store, clock, quota, acme, 2)
    assert quota.daily_used("acme") == 2
    clock.advance(10)
    with pytest.raises(Refusal):
        await quota.reserve(acme, 1)
    assert quota.daily_used("acme") == 2


async def test_a_sync_counts_each_stored_message_once(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    """A message stored while its project's count is read again must not count twice: the
    sync waits for the messages in flight, and holds new reservations back meanwhile."""
    quota = QuotaTracker(store, clock, Metrics(), sync_interval=5)
    acme = project(daily_quota=3)
    in_flight = await quota.reserve(acme, 2)  # being signed and stored
    clock.advance(5)  # the next reservation reads the store's count again
    waiting = asyncio.ensure_future(quota.reserve(acme, 1))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()  # held back until the message in flight is stored
    other = asyncio.ensure_future(quota.reserve(acme, 1))
    await asyncio.sleep(0)
    assert not other.done()
    stored(store, clock, quota, in_flight)
    second = await waiting  # 2 stored + 1 <= 3 (counting the 2 twice would refuse it)
    with pytest.raises(Refusal):
        await other  # 2 + 1 held + 1 > 3
    assert quota.daily_used("acme") == 3
    stored(store, clock, quota, second)
    clock.advance(5)
    with pytest.raises(Refusal):
        await quota.reserve(acme, 1)
    assert quota.daily_used("acme") == 3


async def test_a_sync_does_not_wait_forever(
    store: FakePlatformStore,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(quota_module, "DRAIN_TIMEOUT", 0.01)
    quota = QuotaTracker(store, clock, Metrics(), sync_interval=5)
    acme = project(daily_quota=10)
    stuck = await quota.reserve(acme, 2)
    clock.advance(5)
    await send(store, clock, quota, acme, 1)
    assert "still in flight" in caplog.text
    assert quota.daily_used("acme") == 3  # the stuck one still held
    quota.release(stuck)
    assert quota.daily_used("acme") == 1


async def test_rate_limit_per_second(store: FakePlatformStore, clock: FakeClock) -> None:
    quota = QuotaTracker(store, clock, Metrics())
    acme = project(rate_limit=3)
    await quota.reserve(acme, 2)
    await quota.reserve(acme, 1)
    with pytest.raises(Refusal) as caught:
        await quota.reserve(acme, 1)
    assert caught.value is RATE_EXCEEDED
    assert caught.value.kind is RefusalKind.RATE_LIMIT and caught.value.temporary
    assert caught.value.detail == "Throttling failure: Maximum sending rate exceeded"
    clock.advance(0.5)
    with pytest.raises(Refusal):
        await quota.reserve(acme, 1)
    clock.advance(0.5)
    await quota.reserve(acme, 3)
    assert quota.rate_used("acme") == 3
    assert store.calls.get("count_sends", 0) == 0  # no daily quota: no counting


async def test_gauges_fall_when_a_project_stops_sending(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    metrics = Metrics()
    quota = QuotaTracker(store, clock, metrics)
    acme = project(daily_quota=100, rate_limit=10)
    await send(store, clock, quota, acme, 4)
    clock.advance(0.4)
    await send(store, clock, quota, acme, 3)
    assert gauge(metrics, "postroom_quota_rate_used") == 7
    assert gauge(metrics, "postroom_quota_rate_limit") == 10
    assert gauge(metrics, "postroom_quota_daily_used") == 7
    clock.advance(0.7)  # the first message left the last second
    assert gauge(metrics, "postroom_quota_rate_used") == 3
    clock.advance(1)
    assert gauge(metrics, "postroom_quota_rate_used") == 0
    assert gauge(metrics, "postroom_quota_daily_used") == 7
    clock.advance(24 * 3600 - 2)  # the first message leaves the rolling day
    assert gauge(metrics, "postroom_quota_daily_used") == 3
    clock.advance(0.5)
    assert gauge(metrics, "postroom_quota_daily_used") == 0
    assert gauge(metrics, "postroom_quota_daily_used", "other") is None  # never sent


async def test_a_new_tracker_takes_over_the_gauges(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    metrics = Metrics()
    first = QuotaTracker(store, clock, metrics)
    await send(store, clock, first, project(), 1)
    second = QuotaTracker(store, clock, metrics)  # e.g. the application started again
    await send(store, clock, second, project("beta"), 1)
    exposition = metrics.exposition().decode()
    assert exposition.count("postroom_quota_daily_used{") == 1
    assert 'postroom_quota_daily_used{project="beta"} 1.0' in exposition


async def test_no_limits(store: FakePlatformStore, clock: FakeClock) -> None:
    metrics = Metrics()
    quota = QuotaTracker(store, clock, metrics)
    for _ in range(3):
        await send(store, clock, quota, project(), 4)
    assert read_usage(store, project(), clock.now()) == (12, None, None)
    assert gauge(metrics, "postroom_quota_daily_limit") == -1
    assert gauge(metrics, "postroom_quota_rate_limit") == -1
    assert gauge(metrics, "postroom_quota_daily_used") == 12


async def test_store_down_at_the_first_count_is_an_error(
    store: FakePlatformStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store.fail_count = True
    metrics = Metrics()
    quota = QuotaTracker(store, clock, metrics)
    with pytest.raises(RuntimeError):
        await quota.reserve(project(daily_quota=10), 1)
    store.fail_count = False
    await send(store, clock, quota, project(daily_quota=10), 1)
    store.fail_count = True
    clock.advance(10)
    await send(store, clock, quota, project(daily_quota=10), 1)  # uses the last count
    assert quota.daily_used("acme") == 2
    with caplog.at_level(logging.ERROR):
        assert gauge(metrics, "postroom_quota_daily_used") is None  # left out, not wrong
    assert gauge(metrics, "postroom_quota_daily_limit") == 10
    store.fail_count = False
    clock.advance(10)
    await quota.reserve(project(daily_quota=10), 1)
    assert quota.daily_used("acme") == 3
