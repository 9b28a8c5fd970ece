"""The supervisor's jobs on a fake clock: nothing here really sleeps (the fake clock's sleep
returns only when the test advances it), so every run is caused by an `advance`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from postroom.core.clock import FakeClock
from postroom.supervisor import Supervisor


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until `condition` holds (bounded in loop turns, not in time)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def parked(clock: FakeClock, count: int) -> None:
    """Until `count` jobs wait for the fake clock."""
    await until(lambda: clock.sleepers == count)


async def test_a_periodic_job_runs_at_once_then_every_interval() -> None:
    clock = FakeClock()
    jobs = Supervisor(clock)
    runs: list[float] = []

    async def tick() -> None:
        runs.append(clock.monotonic())

    jobs.every("tick", 10, tick)
    assert runs == []  # declared, not begun
    jobs.start()
    await parked(clock, 1)
    assert runs == [0.0]
    clock.advance(9)
    await parked(clock, 1)
    assert runs == [0.0]  # not yet due
    clock.advance(1)
    await until(lambda: len(runs) == 2)
    await parked(clock, 1)
    clock.advance(10)
    await until(lambda: len(runs) == 3)
    assert runs == [0.0, 10.0, 20.0]
    assert jobs.state("tick").runs == 3
    await jobs.stop()


async def test_first_delays_the_first_run() -> None:
    clock = FakeClock()
    jobs = Supervisor(clock)
    runs: list[float] = []

    async def tick() -> None:
        runs.append(clock.monotonic())

    jobs.every("later", 5, tick, first=30)
    jobs.start()
    await parked(clock, 1)
    clock.advance(29)
    await parked(clock, 1)
    assert runs == []
    clock.advance(1)
    await until(lambda: runs == [30.0])
    await jobs.stop()


async def test_a_failing_periodic_job_is_logged_and_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    jobs = Supervisor(clock)
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk on fire")

    caplog.set_level(logging.ERROR, logger="postroom.supervisor")
    jobs.every("flaky", 2, flaky)
    jobs.start()
    await parked(clock, 1)
    state = jobs.state("flaky")
    assert (state.runs, state.failures, state.last_error) == (1, 1, "RuntimeError: disk on fire")
    (record,) = [r for r in caplog.records if "flaky" in r.getMessage()]
    assert record.exc_info is not None and "disk on fire" in str(record.exc_info[1])
    clock.advance(2)
    await until(lambda: calls == 2)
    await parked(clock, 1)
    assert (state.runs, state.failures) == (2, 1)  # still alive, and it succeeded this time
    await jobs.stop()


async def test_a_crashing_worker_is_logged_and_restarted_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    jobs = Supervisor(clock, backoff_first=1, backoff_max=8)
    starts: list[float] = []
    forever = asyncio.Event()

    async def work() -> None:
        starts.append(clock.monotonic())
        if len(starts) <= 3:
            raise ConnectionError(f"crash {len(starts)}")
        await forever.wait()  # the fourth run keeps going

    caplog.set_level(logging.ERROR, logger="postroom.supervisor")
    jobs.worker("feed", work)
    jobs.start()
    await parked(clock, 1)  # crashed once, waits 1 s
    assert starts == [0.0]
    clock.advance(1)
    await until(lambda: len(starts) == 2)
    await parked(clock, 1)  # crashed again, waits 2 s
    clock.advance(1)
    await parked(clock, 1)
    assert len(starts) == 2
    clock.advance(1)
    await until(lambda: len(starts) == 3)
    await parked(clock, 1)  # waits 4 s
    clock.advance(4)
    await until(lambda: len(starts) == 4)
    assert starts == [0.0, 1.0, 3.0, 7.0]
    state = jobs.state("feed")
    assert (state.runs, state.failures, state.last_error) == (4, 3, "ConnectionError: crash 3")
    crashes = [r for r in caplog.records if "worker feed crashed" in r.getMessage()]
    assert len(crashes) == 3 and all(r.exc_info for r in crashes)
    await jobs.stop()


async def test_a_worker_that_returns_is_started_again() -> None:
    clock = FakeClock()
    jobs = Supervisor(clock, backoff_first=1)
    runs = 0

    async def quits() -> None:
        nonlocal runs
        runs += 1

    jobs.worker("quits", quits)
    jobs.start()
    await parked(clock, 1)
    clock.advance(1)
    await until(lambda: runs == 2)
    await jobs.stop()


async def test_stop_cancels_and_awaits_every_job_newest_first() -> None:
    clock = FakeClock()
    jobs = Supervisor(clock)
    ended: list[str] = []
    running = {"first": asyncio.Event(), "second": asyncio.Event()}

    def job(name: str) -> Callable[[], object]:
        async def run() -> None:
            running[name].set()
            try:
                await asyncio.Event().wait()
            finally:
                await asyncio.sleep(0)  # clean-up that itself awaits
                ended.append(name)

        return run

    jobs.worker("first", job("first"))  # type: ignore[arg-type]
    jobs.every("second", 1, job("second"))  # type: ignore[arg-type]
    jobs.start()
    await until(lambda: all(e.is_set() for e in running.values()))
    await jobs.stop()
    assert ended == ["second", "first"]  # reverse order of start, each awaited
    with pytest.raises(RuntimeError):
        jobs.every("late", 1, job("first"))  # type: ignore[arg-type]


async def test_stop_is_bounded_for_a_job_that_will_not_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    jobs = Supervisor(clock, stop_timeout=0.05)
    release = asyncio.Event()
    entered = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            entered.set()
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # swallows the cancellation

    caplog.set_level(logging.ERROR, logger="postroom.supervisor")
    jobs.worker("stubborn", stubborn)
    jobs.start()
    await entered.wait()
    await jobs.stop()
    assert any("did not stop" in r.getMessage() for r in caplog.records)
    release.set()  # it returns now; the supervisor would restart it after a backoff
    await parked(clock, 1)
    await jobs.stop()  # a second stop cancels the rest
    assert clock.sleepers == 0


async def test_a_job_declared_after_start_begins_at_once() -> None:
    clock = FakeClock()
    jobs = Supervisor(clock)
    jobs.start()
    ran = asyncio.Event()

    async def late() -> None:
        ran.set()

    jobs.every("late", 60, late)
    await asyncio.wait_for(ran.wait(), 5)
    with pytest.raises(ValueError):
        jobs.every("late", 60, late)  # names are unique
    assert jobs.names == ("late",)
    await jobs.stop()


def test_fake_clock_wakes_a_sleeper_on_another_thread() -> None:
    """Tests advance the clock of a server running in a thread (tests/harness.py)."""
    import threading

    clock = FakeClock()
    woke = threading.Event()

    def server() -> None:
        async def main() -> None:
            await clock.sleep(5)
            woke.set()

        asyncio.run(main())

    thread = threading.Thread(target=server)
    thread.start()
    for _ in range(1000):
        if clock.sleepers:
            break
        threading.Event().wait(0.001)
    clock.advance(4)
    assert not woke.wait(0.05)
    clock.advance(1)
    assert woke.wait(5)
    thread.join(5)
