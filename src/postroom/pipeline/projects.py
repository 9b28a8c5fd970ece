"""What the submission pipeline needs to know about a project, cached.

Every submitted message needs the project (mode, quotas), its verified domains with their DKIM
keys and its verified addresses. Reading them from the PlatformStore for every message would
cost a database round trip on a worker thread each time, so a snapshot per project is kept.
The submission door reads the platform's change counter at every MAIL and hands it over
(`saw_generation`): when it moved, every snapshot is dropped, so a domain verified, a key
activated or a project changed (by anyone) applies to the next transaction there. Snapshots
also expire after `ttl` seconds (injected clock), the bound for doors that do not read the
counter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, NotFound, Refusal, RefusalKind
from postroom.core.platform import Domain, PlatformStore, Project
from postroom.dns.dkim import normalize_domain

log = logging.getLogger("postroom.pipeline")

DEFAULT_TTL = 5.0
NO_PROJECT = Refusal(
    RefusalKind.PROJECT_GONE,
    "The project of these credentials no longer exists; contact your administrator",
)


@dataclass(frozen=True, slots=True)
class ProjectView:
    """A snapshot of one project for the pipeline."""

    project: Project
    domains: Mapping[str, Domain]  # verified domains by A-label name
    addresses: frozenset[str]  # verified addresses, lower case (never pending ones)
    loaded: float  # clock.monotonic() when read

    def verified(self, address: str) -> bool:
        """True when `address` is a verified address or at a verified domain (exact domain)."""
        lowered = address.lower()
        if lowered in self.addresses:
            return True
        domain = ascii_domain(lowered.rpartition("@")[2])
        return domain is not None and domain in self.domains


def ascii_domain(domain: str) -> str | None:
    """The domain in lower-case A-labels, or None when it is not a valid host name."""
    if domain.startswith("["):
        return None
    try:
        return normalize_domain(domain)
    except (ValueError, InvalidInput):  # a single label (localhost) is InvalidInput
        return None


class ProjectDirectory:
    """Cached ProjectViews read from the PlatformStore (on worker threads)."""

    def __init__(self, platform: PlatformStore, clock: Clock, ttl: float = DEFAULT_TTL) -> None:
        self._platform = platform
        self._clock = clock
        self._ttl = ttl
        self._views: dict[str, ProjectView] = {}
        self._loading: dict[str, asyncio.Future[ProjectView]] = {}
        self._generation: int | None = None  # the platform's change counter last seen
        self._epoch = 0  # raised whenever every snapshot is dropped

    def invalidate(self, project_id: str | None = None) -> None:
        """Forget one project's snapshot (or all): the next message reads it afresh. Reads
        already under way are not kept (nor shared with later callers)."""
        if project_id is None:
            self._views.clear()
            self._loading.clear()
            self._epoch += 1
        else:
            self._views.pop(project_id, None)
            self._loading.pop(project_id, None)

    def saw_generation(self, generation: int) -> None:
        """The platform's change counter as just read: when it moved since the last one
        seen, drop every snapshot (something a snapshot may hold has changed)."""
        if generation != self._generation:
            self._generation = generation
            self.invalidate()

    def observe(self, project: Project) -> None:
        """A fresh read of `project` (the submission door re-reads it at every MAIL): when the
        cached snapshot holds another version of it, forget the snapshot, so that the message
        of this transaction sees the change (mode, quotas) at once."""
        view = self._views.get(project.id)
        if view is not None and view.project != project:
            self._views.pop(project.id, None)

    def peek(self, project_id: str) -> ProjectView | None:
        """The project's snapshot as cached, however old (None: none cached); for guesses
        only (what `get` answers decides)."""
        return self._views.get(project_id)

    async def get(self, project_id: str) -> ProjectView:
        """The project's snapshot, read again when older than the TTL.

        Raises a Refusal (project gone) when the project does not exist; a store failure
        propagates (the door answers 451 4.3.0)."""
        view = self._views.get(project_id)
        if view is not None and self._clock.monotonic() - view.loaded < self._ttl:
            return view
        pending = self._loading.get(project_id)
        if pending is None:
            pending = asyncio.ensure_future(self._load(project_id))
            self._loading[project_id] = pending
            pending.add_done_callback(lambda done: self._forget_load(project_id, done))
        return await asyncio.shield(pending)

    def _forget_load(self, project_id: str, done: asyncio.Future[ProjectView]) -> None:
        if self._loading.get(project_id) is done:
            del self._loading[project_id]

    async def _load(self, project_id: str) -> ProjectView:
        epoch = self._epoch
        try:
            view = await asyncio.to_thread(self._read, project_id)
        except NotFound:
            self._views.pop(project_id, None)
            raise NO_PROJECT from None
        if epoch == self._epoch:  # not dropped while it was read: it may be stale
            self._views[project_id] = view
        return view

    def _read(self, project_id: str) -> ProjectView:
        platform = self._platform
        project = platform.get_project(project_id)
        domains: dict[str, Domain] = {}
        for domain in platform.list_domains(project_id):  # with their DKIM keys
            if domain.verified:
                domains[domain.name.lower()] = domain
        addresses = frozenset(
            a.address.lower() for a in platform.list_address_identities(project_id) if a.verified
        )
        return ProjectView(project, domains, addresses, self._clock.monotonic())
