"""Build the platform service from the application config (for the app and the CLI)."""

from __future__ import annotations

from datetime import timedelta

from postroom.config import Config
from postroom.core.clock import Clock, SystemClock
from postroom.core.platform import PlatformStore
from postroom.dns.resolver import DnsPythonResolver, Resolver, parse_nameserver
from postroom.platform.address_proof import AddressProofSettings
from postroom.platform.domains import DomainSettings
from postroom.platform.service import PlatformService
from postroom.storage.engine import open_platform_store


class LazyResolver:
    """A DnsPythonResolver made on first use, so that starting without a usable system
    resolver configuration fails only the DNS checks, not the start."""

    def __init__(self, nameserver: str | None) -> None:
        self.nameserver = nameserver
        self._resolver: DnsPythonResolver | None = None

    def _get(self) -> DnsPythonResolver:
        if self._resolver is None:
            self._resolver = DnsPythonResolver(self.nameserver)
        return self._resolver

    async def txt(self, name: str) -> list[str]:
        return await self._get().txt(name)

    async def mx(self, name: str) -> list[tuple[int, str]]:
        return await self._get().mx(name)

    async def a(self, name: str) -> list[str]:
        return await self._get().a(name)

    async def aaaa(self, name: str) -> list[str]:
        return await self._get().aaaa(name)


def platform_service(
    config: Config, store: PlatformStore, clock: Clock, resolver: Resolver | None = None
) -> PlatformService:
    """The service on an open store, DNS through `resolver` or the configured one (the
    `resolver` option, else the system's), records naming the configured hostname."""
    return PlatformService(
        store,
        clock,
        resolver or LazyResolver(config.resolver or None),
        DomainSettings(hostname=config.hostname),
        AddressProofSettings(token_lifetime=timedelta(seconds=config.address_token_lifetime)),
        max_identities=config.max_identities,
    )


def open_platform(
    config: Config, clock: Clock | None = None, resolver: Resolver | None = None
) -> PlatformService:
    """The service on the configured database (migrated), DNS through `resolver` or the
    configured one (`resolver` option, else the system's). Blocking; `close()` it."""
    if config.resolver:
        parse_nameserver(config.resolver)  # a bad --resolver is a ConfigError now, not later
    store = open_platform_store(config)
    return platform_service(config, store, clock or SystemClock(), resolver)
