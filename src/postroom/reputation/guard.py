"""The reputation guard: each live project's bounce rate (hard bounces per recipient sent) and
complaint rate (complaints per recipient sent) over a rolling window, judged against
thresholds. Crossing the warning level writes a `reputation` event (level `warning`); crossing
the pause level writes one (level `paused`) and pauses the project's sending: the submission
pipeline then refuses its messages (`554 5.7.1 Sending paused for this project`, HTTP 403)
until an admin resumes it (`resume`, level `resumed`), after which the rates count from the
resume on. Rates count only once the window holds `min_volume` recipients sent. Falling
back under the warning level writes a `reputation` event of level `ok`.

Defaults follow what mailbox providers and SES tolerate: warn at 5 % bounces or 0.1 %
complaints, pause at 10 % or 0.5 %, over 7 days, from 200 recipients on.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, NotFound
from postroom.core.platform import PlatformStore, Project
from postroom.core.reputation import Thresholds, judge, rates
from postroom.storage.reputation import SqlReputationStore

log = logging.getLogger("postroom.reputation")

REPORT_WINDOWS: tuple[tuple[str, timedelta], ...] = (
    ("24h", timedelta(hours=24)),
    ("7d", timedelta(days=7)),
    ("30d", timedelta(days=30)),
)
CHART_DAYS = 30


class ReputationGuard:
    def __init__(
        self, store: SqlReputationStore, platform: PlatformStore, clock: Clock, limits: Thresholds
    ) -> None:
        self._store = store
        self._platform = platform
        self._clock = clock
        self.limits = limits

    def _window_start(self, now: datetime, since: datetime | None) -> datetime:
        start = now - timedelta(seconds=self.limits.window)
        return max(start, since) if since is not None else start

    def run_once(self) -> list[tuple[str, str]]:
        """Blocking: judge every live project; the (project, new level) of each change."""
        now = self._clock.now()
        states = self._store.states()
        changed: list[tuple[str, str]] = []
        for project in self._platform.list_projects():
            if project.mode != "live":
                continue
            state = states.get(project.id)
            current = state.level if state is not None else "ok"
            if current == "paused":
                continue  # until an admin resumes it
            since = state.since if state is not None else None
            counts = self._store.counts(project.id, self._window_start(now, since))
            level, why = judge(counts, self.limits)
            if level == current:
                continue
            detail = {**rates(counts), "reason": why, "window_seconds": self.limits.window}
            try:
                if self._store.change(project.id, level, now, detail, expected=current):
                    changed.append((project.id, level))
                    log.warning(
                        "project reputation changed",
                        extra={"project": project.id, "level": level, "reason": why},
                    )
            except NotFound:
                continue  # deleted meanwhile
        return changed

    def resume(self, project: str, by: str) -> None:
        """Blocking: an admin resumes a paused project's sending; its rates count from now.
        InvalidInput (field `project`) when it is not paused; NotFound when it does not exist."""
        now = self._clock.now()
        found = self._platform.get_project(project)  # NotFound
        state = self._store.state(project)
        if state.level != "paused" and found.paused is None:
            raise InvalidInput(f"project {project!r} is not paused", "project")
        detail = {"reason": f"resumed by {by}" if by else "resumed", "by": by}
        self._store.change(
            project, "ok", now, detail, expected=state.level, since=now, resumed=True
        )

    def report(self, project: Project) -> dict[str, Any]:
        """Blocking: the project's level, pause, rates per window and a daily chart."""
        now = self._clock.now()
        state = self._store.state(project.id)
        windows = {
            name: rates(self._store.counts(project.id, now - length))
            for name, length in REPORT_WINDOWS
        }
        judged = self._window_start(now, state.since)
        daily = self._store.daily(project.id, now - timedelta(days=CHART_DAYS - 1))
        return {
            "project": project.id,
            "level": state.level,
            "changed": _iso(state.changed),
            # why the level is what it is (the rate that passed which threshold), if not ok
            "reason": (state.detail or {}).get("reason") if state.level != "ok" else None,
            "paused": _iso(project.paused),
            "pause_reason": project.pause_reason or None,
            "counted_since": _iso(judged),
            "judged": rates(self._store.counts(project.id, judged)),
            "domains": {
                domain: rates(counts)
                for domain, counts in sorted(
                    self._store.by_sending_domain(project.id, judged).items()
                )
            },
            "windows": windows,
            "thresholds": self.limits.view(),
            "daily": [{"day": day.date().isoformat(), **rates(c)} for day, c in daily],
        }


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")
