"""The durable event log's vocabulary: event types, a stored event, a query and a page.

An event records one state change others must hear about (DESIGN.md): a live project's
message accepted for a recipient (`send`), delivered (`delivery`), deferred to a retry
(`deferred`), failed for good (`bounce`), failed because its queue lifetime ran out
(`expired`), cancelled by an operator (`cancelled`); and, once the feedback loop writes them,
`complaint`, `reject` and `suppressed`; and `webhook_disabled` when a webhook that failed
for a day is disabled (no message or recipient: its detail names the webhook); and
`reputation` when the reputation guard warns about a project's bounce or complaint rate,
pauses its sending, or an admin resumes it (no message or recipient: its detail has the
`level`, the rates and the counts). Each is written
in the transaction of the change it records, so the log never tells of a change that did not
happen, nor misses one that did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias, get_args

from postroom.core.errors import InvalidInput

EventType: TypeAlias = Literal[
    "send",
    "delivery",
    "deferred",
    "bounce",
    "expired",
    "cancelled",
    "complaint",
    "reject",
    "suppressed",
    "webhook_disabled",
    "reputation",
]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)

# Longest page of events a query returns.
MAX_EVENT_PAGE = 1000


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to write. `detail` holds what the type carries (JSON-serialisable): for a
    delivery result the reply (`code`, `enhanced`, `text`), the remote MTA (`remote_mta`,
    `remote_ip`), and for failures `hard` and `reason`."""

    project: str
    type: EventType
    time: datetime
    message_id: str | None = None
    recipient: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """A stored event; `id` grows with every event written (the paging cursor)."""

    id: int
    project: str
    type: EventType
    time: datetime
    message_id: str | None
    recipient: str | None
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which events of a project: every given condition must hold. `recipient` matches the
    whole address, case-insensitively; `since` is inclusive and `until` exclusive; `after`
    is the cursor (events with a larger id)."""

    types: tuple[EventType, ...] = ()
    recipient: str | None = None
    message_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int | None = None
    limit: int = 100
    newest_first: bool = False  # the latest `limit` events, newest first (no cursor)


@dataclass(frozen=True, slots=True)
class EventPage:
    """Events in id order (oldest first); `next` is the cursor of the following page (None
    when this page is the last one at the time of the query)."""

    events: tuple[Event, ...]
    next: int | None


def check_types(types: Sequence[str]) -> tuple[EventType, ...]:
    """The event types named, or InvalidInput naming the unknown one (field `type`)."""
    known: list[EventType] = []
    for name in types:
        match = next((t for t in EVENT_TYPES if t == name), None)
        if match is None:
            raise InvalidInput(
                f"unknown event type {name!r}; known: {', '.join(EVENT_TYPES)}", "type"
            )
        known.append(match)
    return tuple(known)
