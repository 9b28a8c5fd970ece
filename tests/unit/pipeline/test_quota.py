"""Quotas: daily (rolling 24 h, from the store) and per second (in memory), per recipient."""

from __future__ import annotations

import pytest

from postroom.core.clock import FakeClock
from postroom.core.errors import Refusal, RefusalKind
from postroom.metrics import Metrics
from postroom.pipeline.quota import DAILY_EXCEEDED, RATE_EXCEEDED, QuotaTracker

from .fakes import FakePlatformStore, project


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> FakePlatformStore:
    return FakePlatformStore()


async def test_daily_quota_counts_recipients_over_a_rolling_day(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    metrics = Metrics()
    quota = QuotaTracker(store, clock, metrics, sync_interval=5)
    acme = project(daily_quota=5)
    quota.commit(await quota.reserve(acme, 2))
    quota.commit(await quota.reserve(acme, 3))
    with pytest.raises(Refusal) as caught:
        await quota.reserve(acme, 1)
    assert caught.value is DAILY_EXCEEDED
    assert (caught.value.kind, caught.value.detail, caught.value.temporary) == (
        RefusalKind.DAILY_QUOTA,
        "Throttling failure: Daily message quota exceeded",
        True,
    )
    assert quota.daily_used("acme") == 5
    exposition = metrics.exposition().decode()
    assert 'postroom_quota_daily_used{project="acme"} 5.0' in exposition
    assert 'postroom_quota_daily_limit{project="acme"} 5.0' in exposition
    clock.advance(60)
    with pytest.raises(Refusal):  # written to the store and counted there now
        await quota.reserve(acme, 1)
    assert sum(n for _, _, n in store.sends) == 5
    clock.advance(24 * 3600)
    quota.commit(await quota.reserve(acme, 5))


async def test_other_processes_sends_count(store: FakePlatformStore, clock: FakeClock) -> None:
    quota = QuotaTracker(store, clock, Metrics())
    store.record_sends("acme", clock.now(), 9)
    with pytest.raises(Refusal):
        await quota.reserve(project(daily_quota=10), 2)
    await quota.reserve(project(daily_quota=10), 1)


async def test_a_released_reservation_does_not_count(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    quota = QuotaTracker(store, clock, Metrics())
    acme = project(daily_quota=2)
    quota.release(await quota.reserve(acme, 2))
    quota.commit(await quota.reserve(acme, 2))
    await quota.sync_all()
    assert [n for _, _, n in store.sends] == [2]


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


async def test_no_limits_still_records_sends(store: FakePlatformStore, clock: FakeClock) -> None:
    quota = QuotaTracker(store, clock, Metrics())
    for _ in range(3):
        quota.commit(await quota.reserve(project(), 4))
    await quota.sync_all()
    assert sum(n for _, _, n in store.sends) == 12
    assert store.calls["record_sends"] == 1  # one row per second


async def test_store_down_at_the_first_count_is_an_error(
    store: FakePlatformStore, clock: FakeClock
) -> None:
    store.fail_count = True
    quota = QuotaTracker(store, clock, Metrics())
    with pytest.raises(RuntimeError):
        await quota.reserve(project(daily_quota=10), 1)
    store.fail_count = False
    quota.commit(await quota.reserve(project(daily_quota=10), 1))
    store.fail_count = True
    clock.advance(10)
    quota.commit(await quota.reserve(project(daily_quota=10), 1))  # uses the last count
    assert quota.daily_used("acme") == 2
    store.fail_count = False
    clock.advance(10)
    await quota.reserve(project(daily_quota=10), 1)
    assert quota.daily_used("acme") == 3
