"""The in-memory schedule of due delivery work (delivery/due.py): pure code on a fake clock."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from postroom.core.clock import FakeClock
from postroom.delivery.due import DueSchedule

START = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


def test_an_empty_schedule_has_nothing_due_and_no_time_to_wait_for(clock: FakeClock) -> None:
    schedule = DueSchedule(clock)
    assert not schedule.due(clock.now())
    assert schedule.next_due() is None
    assert schedule.seconds_until(clock.now()) is None
    assert not schedule.needs_load(clock.now())


def test_work_due_now_is_due_at_once_and_future_work_when_its_time_comes(
    clock: FakeClock,
) -> None:
    schedule = DueSchedule(clock, resolution=1.0)
    schedule.push(at(30.1))
    assert not schedule.due(clock.now())
    # Future times are rounded up to the resolution: never claimed before they are due.
    assert schedule.seconds_until(clock.now()) == pytest.approx(30.75)
    assert not schedule.due(at(30.1))
    assert schedule.due(at(30.75))
    schedule.push(at(-0.5))  # due already (an entry committed a moment ago)
    assert schedule.due(clock.now())
    assert schedule.seconds_until(clock.now()) == 0.0


def test_times_within_one_step_share_one_key(clock: FakeClock) -> None:
    schedule = DueSchedule(clock, resolution=1.0)
    for tenth in range(1, 10):
        schedule.push(at(60 + tenth / 10))
    assert schedule.size <= 2  # the step boundary may fall inside the second
    for offset in range(100):
        schedule.push(at(-offset / 1000))  # many entries due now
    assert schedule.size <= 4


def test_settle_drops_what_was_due_at_the_claim_and_keeps_later_keys(clock: FakeClock) -> None:
    schedule = DueSchedule(clock)
    schedule.push(at(0))
    schedule.push(at(120))
    mark = schedule.mark()
    schedule.settle(clock.now(), mark)
    assert not schedule.due(clock.now())
    assert schedule.size == 1
    assert schedule.next_due() == at(120.75)


def test_a_push_during_a_claim_survives_the_settle(clock: FakeClock) -> None:
    """An entry committed while a claim ran may not have been seen by it: its key (even one
    equal to a key already held) stays due after the claim settles."""
    schedule = DueSchedule(clock)
    schedule.push(at(0))
    mark = schedule.mark()
    schedule.push(at(0))  # committed during the claim, same key
    schedule.settle(clock.now(), mark)
    assert schedule.due(clock.now())
    schedule.settle(clock.now(), schedule.mark())
    assert not schedule.due(clock.now())


def test_memory_is_bounded_and_the_horizon_asks_for_a_read(clock: FakeClock) -> None:
    schedule = DueSchedule(clock, resolution=1.0, capacity=100)
    for second in range(1, 1001):
        schedule.push(at(second))
    assert schedule.size <= 100
    horizon = schedule.horizon
    assert horizon is not None and at(40) < horizon <= at(101)
    # Times at or after the horizon are not kept; earlier ones are.
    before = schedule.size
    schedule.push(at(5000))
    assert schedule.size == before
    schedule.push(at(0.3))
    assert schedule.size == before + 1
    assert not schedule.needs_load(clock.now())
    assert schedule.needs_load(horizon)
    # The wait ends at the horizon at the latest.
    schedule.settle(at(10**6), schedule.mark())
    assert schedule.seconds_until(clock.now()) == pytest.approx((horizon - START).total_seconds())


def test_a_load_merges_database_times_and_an_incomplete_one_sets_the_horizon(
    clock: FakeClock,
) -> None:
    schedule = DueSchedule(clock)
    schedule.begin_load()
    schedule.load([at(-100), at(10), at(20)], complete=False)
    assert schedule.due(clock.now())
    assert schedule.horizon == at(20.75)
    schedule.begin_load()  # a new read: pushes are kept until it is loaded
    assert schedule.horizon is None
    schedule.push(at(500))
    schedule.load([at(10)], complete=True)
    assert schedule.horizon is None
    assert schedule.size == 4  # at(-100) floored, at(10), at(20), at(500)


async def parked(clock: FakeClock) -> None:
    """Until the wait has begun its sleep on the clock."""
    for _ in range(100):
        if clock.sleepers:
            return
        await asyncio.sleep(0)
    raise AssertionError("the wait never slept on the clock")


async def test_wait_ends_on_the_clock_or_at_once_on_a_push(clock: FakeClock) -> None:
    schedule = DueSchedule(clock)
    schedule.arm()
    waiting = asyncio.create_task(schedule.wait(30))
    await parked(clock)
    assert not waiting.done()
    clock.advance(29)
    await asyncio.sleep(0)
    assert not waiting.done()
    clock.advance(1)
    await asyncio.wait_for(waiting, 1)

    schedule.arm()
    waiting = asyncio.create_task(schedule.wait(3600))
    await parked(clock)
    schedule.push(clock.now())  # on the loop's thread
    await asyncio.wait_for(waiting, 1)

    schedule.settle(clock.now(), schedule.mark())  # claimed: nothing held now
    schedule.arm()
    waiting = asyncio.create_task(schedule.wait(3600))
    await parked(clock)
    pusher = threading.Thread(target=schedule.push, args=(clock.now() + timedelta(seconds=5),))
    pusher.start()  # from another thread (a store report's worker thread)
    pusher.join()
    await asyncio.wait_for(waiting, 1)
    await asyncio.sleep(0)
    assert clock.sleepers == 0  # the clock's sleep was cancelled, not left behind


async def test_a_push_between_arm_and_wait_is_not_lost(clock: FakeClock) -> None:
    schedule = DueSchedule(clock)
    schedule.arm()
    schedule.push(clock.now())
    await asyncio.wait_for(schedule.wait(3600), 1)


def test_bad_settings_are_refused(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        DueSchedule(clock, resolution=0)
    with pytest.raises(ValueError):
        DueSchedule(clock, capacity=1)
