"""The suppression list fed from the event log: hard bounces and complaints add entries, soft
bounces add one after a policy (N within a window), which may expire.

`SuppressionFeed.run_once` reads the events after its cursor (kept in the database, table
`suppression_feed`, so a restart goes on where it stopped and an entry an operator removed is
not added again by old events), adds the entries and moves the cursor in one transaction:

* `bounce` with `hard` true (the address does not exist, the domain does not, it moved, it
  takes no mail): reason `bounce`, never expires;
* `complaint`: reason `complaint`, never expires;
* a soft failure (`bounce` with `hard` false, or `expired`): when the recipient has had
  `soft_bounces` of them within `soft_window` seconds, reason `bounce`, expiring after
  `soft_expiry` seconds (0: never). `soft_bounces` 0 turns this off.

The entry belongs to the event's project and records the event id; for the reasons in
`account_reasons` (`bounce`, `complaint`) it goes on the account-wide list instead, so that it
holds for every project (SES's account-level list), its detail naming the project.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from postroom.core.clock import Clock
from postroom.core.suppression import ACCOUNT, Suppression
from postroom.storage.suppressions import SqlSuppressionStore

FEED = "events"
_TYPES = ("bounce", "complaint", "expired")
_SOFT = ("bounce", "expired")


@dataclass(frozen=True, slots=True)
class SoftBouncePolicy:
    soft_bounces: int = 3
    soft_window: float = 7 * 86400.0
    soft_expiry: float = 30 * 86400.0
    account_reasons: frozenset[str] = frozenset()  # reasons whose entries are account-wide


def _detail(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class SuppressionFeed:
    def __init__(
        self,
        store: SqlSuppressionStore,
        clock: Clock,
        policy: SoftBouncePolicy | None = None,
        batch: int = 500,
    ) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy or SoftBouncePolicy()
        self._batch = batch

    def run_once(self) -> int:
        """Read one batch of new events; the number of entries added or renewed."""
        after = self._store.feed_cursor(FEED)
        found = self._store.feedback_events(after, _TYPES, self._batch)
        if not found:
            last = self._store.last_event_id()
            if last > after:  # nothing of interest: skip ahead once
                self._store.commit_feed(FEED, last, [])
            return 0
        entries: dict[tuple[str, str], Suppression] = {}
        for event_id, project, kind, recipient, time_us, text in found:
            entry = self._entry(event_id, project, kind, recipient, time_us, _detail(text))
            if entry is not None:
                entry = self._scoped(entry)
                entries[(entry.scope, recipient.lower())] = entry
        self._store.commit_feed(FEED, found[-1][0], list(entries.values()))
        return len(entries)

    def run_all(self) -> int:
        """Read until the feed has caught up; the number of entries added."""
        total = 0
        while True:
            before = self._store.feed_cursor(FEED)
            total += self.run_once()
            if self._store.feed_cursor(FEED) == before:
                return total

    def _scoped(self, entry: Suppression) -> Suppression:
        """The entry on the account-wide list when the policy puts its reason there."""
        if entry.reason not in self._policy.account_reasons:
            return entry
        detail = f"project {entry.scope}: {entry.detail}".strip(" :")
        return replace(entry, scope=ACCOUNT, detail=detail[:1000])

    def _entry(
        self,
        event_id: int,
        project: str,
        kind: str,
        recipient: str,
        time_us: int,
        detail: dict[str, Any],
    ) -> Suppression | None:
        now = self._clock.now()
        note = " ".join(
            str(detail[k]) for k in ("reason", "enhanced", "code") if detail.get(k) is not None
        )
        if kind == "complaint":
            feedback = detail.get("feedback_type") or detail.get("complaintFeedbackType") or ""
            return Suppression(project, recipient, "complaint", now, None, event_id, str(feedback))
        if kind == "bounce" and detail.get("hard") is True:
            return Suppression(project, recipient, "bounce", now, None, event_id, note)
        policy = self._policy
        if policy.soft_bounces <= 0:
            return None
        since = time_us - int(policy.soft_window * 1_000_000)
        details = self._store.failures_since(project, recipient, _SOFT, since, event_id)
        soft = [d for d in map(_detail, details) if d.get("hard") is not True]
        if len(soft) < policy.soft_bounces:
            return None
        expires = now + timedelta(seconds=policy.soft_expiry) if policy.soft_expiry > 0 else None
        days = policy.soft_window / 86400
        summary = f"{len(soft)} soft bounces within {days:g} days; last: {note}".strip()
        return Suppression(project, recipient, "bounce", now, expires, event_id, summary[:1000])


__all__ = ["FEED", "SoftBouncePolicy", "SuppressionFeed"]
