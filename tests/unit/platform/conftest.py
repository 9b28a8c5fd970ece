"""Service tests: a real SqlPlatformStore on SQLite in a temporary directory, a fake clock and
an in-memory resolver (the real DNS path is in tests/integration/platform)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from postroom.core.clock import FakeClock
from postroom.dns.resolver import DnsError
from postroom.platform import DomainSettings, PlatformService
from postroom.storage.engine import open_platform_store


class MemoryResolver:
    """A Resolver over dicts; names in `failing` raise DnsError."""

    def __init__(self) -> None:
        self.txt_records: dict[str, list[str]] = {}
        self.mx_records: dict[str, list[tuple[int, str]]] = {}
        self.failing: set[str] = set()

    def _check(self, name: str, rtype: str) -> None:
        if name in self.failing:
            raise DnsError(f"DNS query for {name} {rtype} timed out", name, rtype)

    async def txt(self, name: str) -> list[str]:
        self._check(name, "TXT")
        return list(self.txt_records.get(name, []))

    async def mx(self, name: str) -> list[tuple[int, str]]:
        self._check(name, "MX")
        return sorted(self.mx_records.get(name, []))

    async def a(self, name: str) -> list[str]:
        return []

    async def aaaa(self, name: str) -> list[str]:
        return []

    def publish(self, name: str, value: str) -> None:
        self.txt_records.setdefault(name, []).append(value)

    def unpublish(self, name: str) -> None:
        self.txt_records.pop(name, None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def resolver() -> MemoryResolver:
    return MemoryResolver()


@pytest.fixture
def service(
    tmp_path: Path, clock: FakeClock, resolver: MemoryResolver
) -> Iterator[PlatformService]:
    store = open_platform_store(tmp_path / "data")
    svc = PlatformService(store, clock, resolver, DomainSettings(hostname="mail.postroom.test"))
    try:
        yield svc
    finally:
        store.close()
