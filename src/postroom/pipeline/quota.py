"""Sending quotas with Amazon SES semantics, counted per recipient.

* `daily_quota`: recipients per rolling 24 hours. The store's count (PlatformStore.count_sends)
  is read at most every `sync_interval` seconds while a project sends; sends accepted here since
  then are added in memory, so the check itself never waits for the database.
* `rate_limit`: recipients per second, an in-memory sliding window of one second (per process:
  with several processes on one PostgreSQL database each enforces it on its own).

A message that would exceed either is refused (454 4.7.0, SES's wording), never queued: the
check runs before the message is stored, and a refused message counts nothing. Accepted sends
are written to the store (PlatformStore.record_sends) in batches every `sync_interval`, and at
shutdown; a crash can lose at most that interval's counts (the quota then errs in the sender's
favour by as much).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from postroom.core.clock import Clock
from postroom.core.errors import Refusal, RefusalKind
from postroom.core.platform import PlatformStore, Project
from postroom.metrics import Metrics

log = logging.getLogger("postroom.pipeline")

DAILY_EXCEEDED = Refusal(
    RefusalKind.DAILY_QUOTA,
    "Throttling failure: Daily message quota exceeded",
    field="daily_quota",
)
RATE_EXCEEDED = Refusal(
    RefusalKind.RATE_LIMIT,
    "Throttling failure: Maximum sending rate exceeded",
    field="rate_limit",
    retry_after=1.0,
)
DAY = timedelta(hours=24)
DEFAULT_SYNC_INTERVAL = 5.0


@dataclass(slots=True)
class Reservation:
    project: str
    recipients: int
    when: datetime
    settled: bool = False


@dataclass(slots=True)
class _Usage:
    base: int = 0  # sends in the rolling 24 h as counted by the store at the last sync
    held: int = 0  # sends reserved here and not yet part of `base`
    uncounted: int = 0  # of `held`: written to the store, not yet counted in `base`
    synced: float | None = None  # clock.monotonic() of the last successful count
    to_write: list[tuple[datetime, int]] = field(default_factory=list)
    window: deque[tuple[float, int]] = field(default_factory=deque)  # (monotonic, recipients)
    in_window: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class QuotaTracker:
    def __init__(
        self,
        platform: PlatformStore,
        clock: Clock,
        metrics: Metrics,
        sync_interval: float = DEFAULT_SYNC_INTERVAL,
    ) -> None:
        self._platform = platform
        self._clock = clock
        self._metrics = metrics
        self._interval = sync_interval
        self._usage: dict[str, _Usage] = {}

    def _state(self, project_id: str) -> _Usage:
        usage = self._usage.get(project_id)
        if usage is None:
            usage = self._usage[project_id] = _Usage()
        return usage

    def daily_used(self, project_id: str) -> int:
        usage = self._state(project_id)
        return usage.base + usage.held

    def rate_used(self, project_id: str) -> int:
        usage = self._state(project_id)
        self._slide(usage)
        return usage.in_window

    async def reserve(self, project: Project, recipients: int) -> Reservation:
        """Count `recipients` sends against the project's quotas, or raise a Refusal (daily
        quota, rate limit)."""
        usage = self._state(project.id)
        if project.daily_quota is not None and (
            usage.synced is None or self._clock.monotonic() - usage.synced >= self._interval
        ):
            await self.sync(project.id)
        if project.daily_quota is not None and (
            usage.base + usage.held + recipients > project.daily_quota
        ):
            self._gauges(project)
            raise DAILY_EXCEEDED
        self._slide(usage)
        if project.rate_limit is not None and usage.in_window + recipients > project.rate_limit:
            self._gauges(project)
            raise RATE_EXCEEDED
        usage.held += recipients
        usage.window.append((self._clock.monotonic(), recipients))
        usage.in_window += recipients
        self._gauges(project)
        return Reservation(project.id, recipients, self._clock.now())

    def release(self, reservation: Reservation) -> None:
        """The message was not stored after all: its sends do not count against the daily
        quota (the per-second slot stays used)."""
        if reservation.settled:
            return
        reservation.settled = True
        self._state(reservation.project).held -= reservation.recipients

    def commit(self, reservation: Reservation) -> None:
        """The message is stored: its sends are written to the store at the next sync."""
        if reservation.settled:
            return
        reservation.settled = True
        self._state(reservation.project).to_write.append((reservation.when, reservation.recipients))

    async def sync(self, project_id: str) -> None:
        """Write accepted sends to the store, then count the rolling 24 h again."""
        usage = self._state(project_id)
        async with usage.lock:
            batch, usage.to_write = usage.to_write, []
            if batch:
                try:
                    await asyncio.to_thread(self._write, project_id, batch)
                except Exception:
                    log.exception("recording sends of project %s failed", project_id)
                    usage.to_write[:0] = batch
                    return
            usage.uncounted += sum(n for _, n in batch)
            since = self._clock.now() - DAY
            try:
                base = await asyncio.to_thread(self._platform.count_sends, project_id, since)
            except Exception:
                log.exception("counting sends of project %s failed", project_id)
                if usage.synced is None:
                    raise
                return
            usage.base = base
            usage.held -= usage.uncounted  # now part of `base`
            usage.uncounted = 0
            usage.synced = self._clock.monotonic()

    async def sync_all(self) -> None:
        """Sync every project that sent since its last sync (the periodic task; shutdown)."""
        for project_id, usage in list(self._usage.items()):
            if usage.to_write:
                await self.sync(project_id)

    def _write(self, project_id: str, batch: list[tuple[datetime, int]]) -> None:
        by_second: dict[datetime, int] = {}
        for when, count in batch:
            second = when.replace(microsecond=0)
            by_second[second] = by_second.get(second, 0) + count
        for when, count in by_second.items():
            self._platform.record_sends(project_id, when, count)

    def _slide(self, usage: _Usage) -> None:
        horizon = self._clock.monotonic() - 1.0
        window = usage.window
        while window and window[0][0] <= horizon:
            usage.in_window -= window.popleft()[1]

    def _gauges(self, project: Project) -> None:
        metrics = self._metrics
        usage = self._state(project.id)
        metrics.quota_daily_used.labels(project.id).set(usage.base + usage.held)
        metrics.quota_rate_used.labels(project.id).set(usage.in_window)
        metrics.quota_daily_limit.labels(project.id).set(
            -1 if project.daily_quota is None else project.daily_quota
        )
        metrics.quota_rate_limit.labels(project.id).set(
            -1 if project.rate_limit is None else project.rate_limit
        )
