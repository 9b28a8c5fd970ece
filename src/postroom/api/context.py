"""What the HTTP layer needs from the rest of the application, passed in by the composition root."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from postroom.api.big_reads import BigReads
from postroom.checks.links import LinkProbe
from postroom.config import Config
from postroom.core.clock import Clock
from postroom.core.ports import MessageStore
from postroom.dns.resolver import Resolver
from postroom.doors.chaos import Chaos
from postroom.doors.http_send import HttpSendDoor
from postroom.events.bus import EventBus
from postroom.metrics import Metrics


@dataclass
class ApiContext:
    config: Config
    store: MessageStore
    http_send: HttpSendDoor
    bus: EventBus
    metrics: Metrics
    clock: Clock
    ready: Callable[[], bool]
    started: float
    database_label: str
    project: str = "default"
    # The capture door's bound port (the config may say 0 when the port was chosen at start).
    smtp_port: Callable[[], int] = lambda: 0
    # Bounds and shares the reads of big messages (api/big_reads.py).
    big_reads: BigReads = field(default_factory=BigReads)
    # Why the store is not taking new messages now (None: it is); /readyz says it.
    storage_problem: Callable[[], str | None] = lambda: None
    # The link check's HTTP client (checks/http_probe.py when None) and the bound on
    # link checks running at once, shared by every project's API.
    link_probe: LinkProbe | None = None
    link_checks: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    # The capture door's injected errors (--enable-chaos), None when off.
    chaos: Chaos | None = None
    # Spam checks (spamd) running at once, shared by every project's API.
    spam_checks: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))
    # Screenshots (a headless Chromium each) made at once; more wait their turn.
    screenshots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    # DNS for the headers check (DKIM keys, SPF, DMARC): the configured --resolver, else the
    # system's (made by the route when None); headers checks running at once.
    resolver: Resolver | None = None
    header_checks: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
