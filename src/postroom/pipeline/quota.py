"""Counting sends, and the sending quotas (Amazon SES semantics): the one home of the rule.

A *send* is one distinct recipient of a submitted message (`sends_of`). A message counts its
sends when it is stored, and only then: the store writes them to the project's per-second
counter in the message's own transaction (NewMessage.sends, storage/batch.py). So the stored
count is exactly what was acknowledged, whichever process reads it; a refused message counts
nothing.

* `daily_quota`: sends in the rolling 24 hours (`DAY`). `read_usage` reads that count from the
  store: what the management API, the CLI and the admin pages report. The doors check it
  through `QuotaTracker` without a database read per message: the tracker reads the stored
  count at most every `sync_interval` seconds while a project sends, and adds the sends it
  reserved since. Before reading, a sync waits until none of the project's messages is between
  its reservation and its commit (new reservations wait meanwhile: a commit's time every few
  seconds), so that the count holds each stored message exactly once. A door therefore refuses
  exactly when the stored count plus the message would exceed the quota, as `read_usage` shows
  it. (Other processes on one PostgreSQL database are seen at their next sync.)
* `rate_limit`: sends per second, an in-memory sliding window of one second (per process: with
  several processes each enforces it on its own).

A message that would exceed either is refused (454 4.7.0, SES's wording), never queued.

The quota gauges (`postroom_quota_*`, one series per project that submitted mail) are computed
when /metrics is read (`QuotaCollector`), on the injected clock: the per-second figure falls
back to 0 once a project stops sending, and the daily one falls as sends leave the window.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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
RATE_WINDOW = 1.0  # seconds
DEFAULT_SYNC_INTERVAL = 5.0
# A sync waits at most this long for the project's messages in flight to be stored; past it,
# it counts anyway (a message then may count twice until the next sync) and says so.
DRAIN_TIMEOUT = 30.0


def sends_of(recipients: Iterable[str]) -> int:
    """The sends a message counts: its distinct envelope recipients."""
    return len(dict.fromkeys(recipients))


class Usage(NamedTuple):
    sent_24h: int  # sends stored in the rolling 24 hours
    daily_quota: int | None
    rate_limit: int | None


def sent_24h(platform: PlatformStore, project_id: str, now: datetime) -> int:
    """The daily quota's count: the sends stored in the 24 hours before `now` (blocking)."""
    return platform.count_sends(project_id, now - DAY)


def read_usage(platform: PlatformStore, project: Project, now: datetime) -> Usage:
    """The project's usage as the store holds it now (blocking)."""
    return Usage(sent_24h(platform, project.id, now), project.daily_quota, project.rate_limit)


@dataclass(slots=True)
class Reservation:
    project: str
    recipients: int
    settled: bool = False


@dataclass(slots=True)
class _Usage:
    base: int = 0  # the stored count at the last sync
    held: int = 0  # sends reserved since the last sync and not released (not in `base`)
    in_flight: int = 0  # reservations neither committed nor released
    in_flight_sends: int = 0  # their sends
    synced: float | None = None  # clock.monotonic() of the last successful count
    drained: asyncio.Event | None = None  # set when `in_flight` reaches 0 (a sync waits)
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
        self._interval = sync_interval
        self._usage: dict[str, _Usage] = {}
        self._projects: dict[str, Project] = {}  # as last seen by reserve(), for the gauges
        metrics.computed("quota", QuotaCollector(self))

    def _state(self, project_id: str) -> _Usage:
        usage = self._usage.get(project_id)
        if usage is None:
            usage = self._usage[project_id] = _Usage()
        return usage

    def daily_used(self, project_id: str) -> int:
        """The count the doors check against the daily quota: the stored count at the last
        sync plus the sends reserved since (those in flight included)."""
        usage = self._state(project_id)
        return usage.base + usage.held

    def rate_used(self, project_id: str) -> int:
        """Sends reserved in the last second (computed now, without changing any state)."""
        usage = self._usage.get(project_id)
        if usage is None:
            return 0
        horizon = self._clock.monotonic() - RATE_WINDOW
        return sum(n for when, n in tuple(usage.window) if when > horizon)

    def projects(self) -> list[Project]:
        """The projects that reserved sends, as last seen."""
        return list(self._projects.values())

    async def reserve(self, project: Project, recipients: int) -> Reservation:
        """Count `recipients` sends against the project's quotas, or raise a Refusal (daily
        quota, rate limit). Every reservation must end in `commit` (stored) or `release` (not
        stored)."""
        usage = self._state(project.id)
        self._projects[project.id] = project
        if project.daily_quota is not None:
            if usage.lock.locked() or self._stale(usage):
                await self.sync(project.id)
            if usage.base + usage.held + recipients > project.daily_quota:
                raise DAILY_EXCEEDED
        self._slide(usage)
        if project.rate_limit is not None and usage.in_window + recipients > project.rate_limit:
            raise RATE_EXCEEDED
        usage.held += recipients
        usage.in_flight += 1
        usage.in_flight_sends += recipients
        usage.window.append((self._clock.monotonic(), recipients))
        usage.in_window += recipients
        return Reservation(project.id, recipients)

    def release(self, reservation: Reservation) -> None:
        """The message was not stored: its sends do not count against the daily quota (the
        per-second slot stays used)."""
        if reservation.settled:
            return
        reservation.settled = True
        usage = self._state(reservation.project)
        usage.held -= reservation.recipients
        self._landed(usage, reservation)

    def commit(self, reservation: Reservation) -> None:
        """The message is stored, its sends counted in the store with it."""
        if reservation.settled:
            return
        reservation.settled = True
        self._landed(self._state(reservation.project), reservation)

    def _landed(self, usage: _Usage, reservation: Reservation) -> None:
        usage.in_flight -= 1
        usage.in_flight_sends -= reservation.recipients
        if usage.in_flight == 0 and usage.drained is not None:
            usage.drained.set()

    def _stale(self, usage: _Usage) -> bool:
        return usage.synced is None or self._clock.monotonic() - usage.synced >= self._interval

    def daily_sent(self, project_id: str) -> int:
        """The stored count now, as `read_usage` reads it (blocking: a worker thread's)."""
        return sent_24h(self._platform, project_id, self._clock.now())

    async def sync(self, project_id: str) -> None:
        """Read the project's stored count again (unless another sync just did).

        Holds the project's reservations back meanwhile, and reads only once its messages in
        flight are stored or given up: then every send reserved since the last sync is in the
        stored count, exactly once."""
        usage = self._state(project_id)
        async with usage.lock:
            if not self._stale(usage):
                return  # another reservation synced while this one waited
            if usage.in_flight:
                usage.drained = asyncio.Event()
                try:
                    await asyncio.wait_for(usage.drained.wait(), DRAIN_TIMEOUT)
                except TimeoutError:
                    log.warning(
                        "project %s: %d message(s) still in flight after %.0f s; counting the "
                        "stored sends anyway",
                        project_id,
                        usage.in_flight,
                        DRAIN_TIMEOUT,
                    )
                finally:
                    usage.drained = None
            # The sends reserved since the last sync that are stored: all of them, unless the
            # wait timed out (those still in flight stay held; they may count twice meanwhile).
            stored = usage.held - usage.in_flight_sends
            try:
                base = await asyncio.to_thread(self.daily_sent, project_id)
            except Exception:
                log.exception("counting the sends of project %s failed", project_id)
                if usage.synced is None:
                    raise
                return
            usage.base = base
            usage.held -= stored
            usage.synced = self._clock.monotonic()

    def _slide(self, usage: _Usage) -> None:
        horizon = self._clock.monotonic() - RATE_WINDOW
        window = usage.window
        while window and window[0][0] <= horizon:
            usage.in_window -= window.popleft()[1]


class QuotaCollector(Collector):
    """The quota gauges, computed when /metrics is read (in a worker thread: the daily count
    is read from the store, like `read_usage`)."""

    def __init__(self, tracker: QuotaTracker) -> None:
        self._tracker = tracker

    def collect(self) -> Iterator[GaugeMetricFamily]:
        tracker = self._tracker
        labels = ["project"]
        daily_used = GaugeMetricFamily(
            "postroom_quota_daily_used", "Recipients sent in the rolling 24 hours", labels=labels
        )
        daily_limit = GaugeMetricFamily(
            "postroom_quota_daily_limit", "Daily quota in recipients (-1: none)", labels=labels
        )
        rate_used = GaugeMetricFamily(
            "postroom_quota_rate_used", "Recipients sent in the last second", labels=labels
        )
        rate_limit = GaugeMetricFamily(
            "postroom_quota_rate_limit",
            "Maximum sending rate in recipients per second (-1: none)",
            labels=labels,
        )
        for project in tracker.projects():
            try:
                sent = tracker.daily_sent(project.id)
            except Exception:
                log.exception("counting the sends of project %s for /metrics failed", project.id)
            else:
                daily_used.add_metric([project.id], sent)
            daily_limit.add_metric(
                [project.id], -1 if project.daily_quota is None else project.daily_quota
            )
            rate_used.add_metric([project.id], tracker.rate_used(project.id))
            rate_limit.add_metric(
                [project.id], -1 if project.rate_limit is None else project.rate_limit
            )
        yield from (daily_used, daily_limit, rate_used, rate_limit)
