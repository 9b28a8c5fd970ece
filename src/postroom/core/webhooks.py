"""Webhooks' vocabulary: a project's webhook, an outbox row, a logged request, the retry
schedule and the checks on a webhook's URL and event types.

A webhook receives, by HTTP POST, every event of its project's event log whose type it is
subscribed to. Each event is fanned out into the outbox (one row per matching enabled webhook)
in the transaction that writes the event (storage/webhooks.py), and delivered at least once:
retried with backoff (`retry_delay`) for at least RETRY_WINDOW, then given up. A webhook whose
requests have all failed for DISABLE_AFTER is disabled (with a `webhook_disabled` event).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from postroom.core.addresses import is_public_address
from postroom.core.errors import InvalidInput
from postroom.core.events import EVENT_TYPES

OutboxStatus = Literal["pending", "delivered", "failed"]
PENDING: OutboxStatus = "pending"
SENT: OutboxStatus = "delivered"
GIVEN_UP: OutboxStatus = "failed"

# Events a webhook may subscribe to: every type of the event log.
WEBHOOK_EVENT_TYPES: tuple[str, ...] = EVENT_TYPES
MAX_WEBHOOKS_PER_PROJECT = 20
MAX_URL_LENGTH = 2000
# An event is retried for at least this long after it was written, then given up.
RETRY_WINDOW = timedelta(hours=24)
# A webhook whose every request failed for this long is disabled.
DISABLE_AFTER = timedelta(hours=24)
# Waits after the 1st, 2nd, ... failed attempt; the last one repeats.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=10),
    timedelta(seconds=30),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt (1 for the first)."""
    return RETRY_SCHEDULE[min(max(attempts, 1), len(RETRY_SCHEDULE)) - 1]


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    project: str
    url: str
    types: tuple[str, ...]
    enabled: bool
    include_headers: bool  # the payload's mail.headers (the message's header fields)
    created: datetime
    failing_since: datetime | None = None  # first failure since the last success
    disabled_reason: str | None = None  # why Postroom disabled it (None: not by Postroom)
    description: str = ""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One event to deliver to one webhook. `body` is the JSON sent, fixed at the first
    attempt (so retries send the same bytes); `resend_of` is the request a manual resend
    repeats."""

    id: int
    webhook_id: str
    event_id: int
    project: str
    message_id: str | None
    status: OutboxStatus
    attempts: int
    next_attempt: datetime
    created: datetime
    body: str | None
    last_error: str | None
    resend_of: int | None = None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One HTTP request made to a webhook (or the failure to make it). Bodies are truncated."""

    id: int
    webhook_id: str
    outbox_id: int
    event_id: int
    time: datetime
    status_code: int | None  # None: no response (refused, timed out, blocked address)
    latency_ms: float
    error: str | None
    request_body: str
    response_body: str
    succeeded: bool


@dataclass(frozen=True, slots=True)
class Attempted:
    """What the sender saw, for the store's report."""

    status_code: int | None
    latency_ms: float
    error: str | None
    response_body: str

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def check_types(types: object) -> tuple[str, ...]:
    """A webhook's event types: a non-empty list of known ones (InvalidInput, field `types`)."""
    if not isinstance(types, list | tuple) or not types:
        raise InvalidInput(
            f"types must be a non-empty array of event types: {', '.join(WEBHOOK_EVENT_TYPES)}",
            "types",
        )
    out: list[str] = []
    for name in types:
        if not isinstance(name, str) or name not in WEBHOOK_EVENT_TYPES:
            raise InvalidInput(
                f"unknown event type {name!r}; known: {', '.join(WEBHOOK_EVENT_TYPES)}", "types"
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def check_url(url: object, allow_private: bool) -> str:
    """A webhook URL: http or https, a host, no user name or password, at most
    MAX_URL_LENGTH characters; an IP-literal or `localhost` host only when public, unless
    `allow_private` (names are checked again, resolved, at each request). InvalidInput names
    `url`."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("url is required (an http:// or https:// URL)", "url")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"url is longer than {MAX_URL_LENGTH} characters", "url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"url is not a valid URL: {exc}", "url") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("url must start with http:// or https://", "url")
    host = parts.hostname
    if not host:
        raise InvalidInput("url has no host", "url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url must not carry a user name or password", "url")
    if port == 0:
        raise InvalidInput("url has port 0", "url")
    if any(c.isspace() for c in url):
        raise InvalidInput("url must not contain spaces", "url")
    if not allow_private:
        local_name = host.rstrip(".").lower()
        if local_name == "localhost" or local_name.endswith(".localhost"):
            raise InvalidInput(
                "url points at this machine; such webhooks need the server option "
                "--webhook-allow-private",
                "url",
            )
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            pass
        else:
            if not is_public_address(host):
                raise InvalidInput(
                    f"url points at a loopback, private or reserved address ({host}); such "
                    "webhooks need the server option --webhook-allow-private",
                    "url",
                )
    return url


def types_column(types: Sequence[str]) -> str:
    """How the types are stored: `,send,bounce,` (the fan-out trigger matches `,type,`)."""
    return "," + ",".join(types) + ","


def types_of(column: str) -> tuple[str, ...]:
    return tuple(t for t in column.split(",") if t)
