"""The in-memory schedule of due delivery work: when to ask the queue for due entries.

The queue in the database stays the truth of what is due and who holds it (claims go through
its lease). This schedule only says WHEN a claim is worth making, so that a delivery worker
with nothing due does not query the database at all. It holds distinct due times (keys, in
microseconds since the epoch) in a heap, fed by:

- `push(when)`: work became due at `when`, in this process, after its commit (messages queued
  by the acceptance pipeline, deferrals, notices, retry-now and release), from any thread;
- `load(times, complete)`: the next due times read from the database (at start, at the
  horizon below, and by the periodic safety read that finds what other processes queued).

Keys are quantized to `resolution`: a time already past is rounded down (due at once), a
future one up, so entries due within one step share one key and one claim.

Memory is bounded: at most `capacity` keys. When more are pushed, the later half is dropped
and the first dropped key becomes the `horizon`: from then on times at or after it are not
kept, and when the horizon comes the caller reads the next due times from the database again
(`needs_load`). A load that did not read everything (`complete=False`) sets the horizon at its
last time in the same way.

A claim takes `mark()` before and `settle(now, mark)` after it has found nothing more: keys
at or before `now` are dropped, except those pushed again since the mark (an entry committed
while the claim ran, which the claim may not have seen).
"""

from __future__ import annotations

import asyncio
import heapq
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from postroom.core.clock import Clock

DEFAULT_RESOLUTION = 1.0  # seconds
DEFAULT_CAPACITY = 10_000  # keys

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def micros(when: datetime) -> int:
    """`when` (timezone-aware) in integer microseconds since the epoch."""
    return (when - _EPOCH) // _MICRO


class DueSchedule:
    def __init__(
        self,
        clock: Clock,
        *,
        resolution: float = DEFAULT_RESOLUTION,
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        if resolution <= 0:
            raise ValueError("the resolution must be positive")
        if capacity < 2:
            raise ValueError("the capacity must be at least 2")
        self._clock = clock
        self._step = max(1, round(resolution * 1_000_000))
        self._capacity = capacity
        self._keys: dict[int, int] = {}  # key -> sequence number of its latest push
        self._heap: list[int] = []  # the keys
        self._seq = 0
        self._horizon: int | None = None  # None: every due time known is kept
        self._lock = threading.Lock()  # pushes come from worker threads too
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    # Feeding -----------------------------------------------------------------------------

    def _key(self, when: int, now: int) -> int:
        step = self._step
        if when <= now:
            return when - when % step
        return -(-when // step) * step

    def push(self, when: datetime) -> None:
        """Work is due at `when` (already committed). Safe from any thread."""
        key = self._key(micros(when), micros(self._clock.now()))
        with self._lock:
            if self._horizon is not None and key >= self._horizon:
                return  # read from the database when the horizon comes
            earliest = self._add(key)
        if earliest:
            self._notify()

    def _add(self, key: int) -> bool:
        """Under the lock: add `key` (or renew its sequence number); whether it is now the
        earliest key."""
        self._seq += 1
        if key not in self._keys:
            heapq.heappush(self._heap, key)
        self._keys[key] = self._seq
        if len(self._keys) > self._capacity:
            self._trim()
        return bool(self._heap) and self._heap[0] == key

    def _trim(self) -> None:
        """Under the lock: keep the earlier half of the keys; the first dropped one becomes
        the horizon."""
        ordered = sorted(self._heap)
        keep = self._capacity // 2
        dropped = ordered[keep]
        self._horizon = dropped if self._horizon is None else min(self._horizon, dropped)
        self._heap = ordered[:keep]  # sorted: a valid heap
        self._keys = {k: self._keys[k] for k in self._heap}

    def begin_load(self) -> None:
        """A read of the database's due times begins: keep every push until it is loaded
        (the read may not see what commits while it runs)."""
        with self._lock:
            self._horizon = None

    def load(self, times: Iterable[datetime], complete: bool) -> None:
        """Merge due times read from the database (in due order). `complete`: the read found
        every pending entry; else the last time read becomes the horizon."""
        now = micros(self._clock.now())
        last: int | None = None
        with self._lock:
            for when in times:
                last = self._key(micros(when), now)
                self._add(last)
            if not complete and last is not None:
                self._horizon = last if self._horizon is None else min(self._horizon, last)
        self._notify()

    # Reading -----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """The keys held."""
        return len(self._keys)

    @property
    def horizon(self) -> datetime | None:
        horizon = self._horizon
        return None if horizon is None else _EPOCH + horizon * _MICRO

    def next_due(self) -> datetime | None:
        """The earliest key, or None when none is held."""
        with self._lock:
            first = self._heap[0] if self._heap else None
        return None if first is None else _EPOCH + first * _MICRO

    def due(self, now: datetime) -> bool:
        """Whether a claim at `now` is likely to find work."""
        with self._lock:
            return bool(self._heap) and self._heap[0] <= micros(now)

    def needs_load(self, now: datetime) -> bool:
        """Whether the horizon has come: due times must be read from the database again."""
        horizon = self._horizon
        return horizon is not None and horizon <= micros(now)

    def seconds_until(self, now: datetime) -> float | None:
        """Seconds from `now` to the next key or the horizon (0 if past), or None."""
        with self._lock:
            first = self._heap[0] if self._heap else None
            known = [k for k in (first, self._horizon) if k is not None]
        if not known:
            return None
        return max(0.0, (min(known) - micros(now)) / 1_000_000)

    # Claiming ----------------------------------------------------------------------------

    def mark(self) -> int:
        """Before a claim: the sequence number `settle` compares with."""
        with self._lock:
            return self._seq

    def settle(self, now: datetime, mark: int) -> None:
        """After claims at `now` found nothing more: drop the keys at or before `now` that
        were not pushed again since `mark`."""
        limit = micros(now)
        again: list[int] = []
        with self._lock:
            heap = self._heap
            while heap and heap[0] <= limit:
                key = heapq.heappop(heap)
                if self._keys[key] > mark:
                    again.append(key)
                else:
                    del self._keys[key]
            for key in again:
                heapq.heappush(heap, key)

    # Waiting -----------------------------------------------------------------------------

    def arm(self) -> None:
        """Before looking at the schedule: forget earlier wake-ups (a push after this wakes
        the next `wait` at once)."""
        self._bind()
        self._wake.clear()

    async def wait(self, seconds: float) -> None:
        """Until a push brings an earlier key (since `arm`), or `seconds` on the clock."""
        self._bind()
        if self._wake.is_set():
            return
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            woken.cancel()

    def _bind(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()

    def _notify(self) -> None:
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self._wake.set()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)
