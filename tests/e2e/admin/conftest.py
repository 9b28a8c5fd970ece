"""A server with an admin user (created through the platform service before start) and a DNS
server of our own for the domain checks. Chromium and screenshots come from tests/e2e."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from postroom.platform.factory import open_platform
from tests.dnszone import DnsZone, dns_zone
from tests.e2e.conftest import PageProblems, watch
from tests.harness import ServerThread, make_config

__all__ = ["dns_zone"]

ADMIN = "alice"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_server(tmp_path: Path, dns_zone: DnsZone) -> Iterator[ServerThread]:
    config = make_config(tmp_path / "data", resolver=dns_zone.nameserver)
    service = open_platform(config)
    try:
        service.create_admin(ADMIN, PASSWORD)
    finally:
        service.close()
    server = ServerThread(config).start()
    try:
        yield server
    finally:
        server.stop()


def new_page(browser: Any, problems: PageProblems, base_url: str, **options: Any) -> Any:
    context = browser.new_context(
        viewport={"width": 1280, "height": 860}, locale="en-US", **options
    )
    context.set_default_timeout(10_000)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    return watch(context.new_page(), problems)
