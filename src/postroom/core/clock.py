"""The clock port and its implementations (time is injected, never read globally).

`Clock.sleep` is how background work waits (postroom/supervisor.py): on the system clock it
is `asyncio.sleep`; on `FakeClock` it returns only once a test has advanced the clock past the
wake-up time, so tests drive periodic jobs without really sleeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait this many seconds of this clock's time (monotonic)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class _Sleeper:
    __slots__ = ("future", "loop", "wake_at")

    def __init__(
        self, wake_at: float, loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]
    ) -> None:
        self.wake_at = wake_at
        self.loop = loop
        self.future = future


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class FakeClock:
    """A clock tests move by hand with `advance`. `sleep` waits until the clock has been
    advanced past the wake-up time (a sleep of 0 or less only yields to the loop). `advance`
    may be called from another thread than the sleepers' event loop (tests drive a server
    running in a thread)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 0.0
        self._lock = threading.Lock()
        self._sleepers: list[_Sleeper] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    @property
    def sleepers(self) -> int:
        """How many sleeps are waiting for the clock to move (tests wait for jobs to park)."""
        with self._lock:
            return sum(1 for s in self._sleepers if not s.future.done())

    @property
    def wakeups(self) -> list[float]:
        """The monotonic times the waiting sleeps wake at, earliest first (tests check what
        a job waits for)."""
        with self._lock:
            return sorted(s.wake_at for s in self._sleepers if not s.future.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            sleeper = _Sleeper(self._mono + seconds, loop, future)
            self._sleepers.append(sleeper)
        try:
            await future
        finally:
            with self._lock:
                if sleeper in self._sleepers:
                    self._sleepers.remove(sleeper)

    def advance(self, seconds: float) -> None:
        """Move both times forward and wake the sleeps now due."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
            self._mono += seconds
            due = [s for s in self._sleepers if s.wake_at <= self._mono]
            self._sleepers = [s for s in self._sleepers if s.wake_at > self._mono]
        for sleeper in due:
            if sleeper.loop.is_closed():
                continue
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is sleeper.loop:
                _wake(sleeper.future)
            else:
                sleeper.loop.call_soon_threadsafe(_wake, sleeper.future)
