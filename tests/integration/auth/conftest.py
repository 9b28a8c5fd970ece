"""Servers with an admin user created before start, and a browser-like httpx client that logs
in and carries the CSRF token the way the pages and scripts do."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from postroom.config import Config
from postroom.core.clock import Clock, FakeClock
from postroom.platform import IssuedApiKey
from postroom.platform.factory import open_platform
from tests.dnszone import dns_zone
from tests.harness import ServerThread, make_config

__all__ = ["dns_zone"]

ADMIN = "alice"
PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def create_admin(config: Config, username: str = ADMIN, password: str = PASSWORD) -> None:
    service = open_platform(config)
    try:
        service.create_admin(username, password)
    finally:
        service.close()


def create_key(config: Config, project: str, *scopes: str, name: str = "k") -> IssuedApiKey:
    service = open_platform(config)
    try:
        if project != "default" and project not in {p.id for p in service.list_projects()}:
            service.create_project(project)
        return service.create_api_key(project, name, list(scopes))
    finally:
        service.close()


def form_token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


class Browser:
    """httpx with cookies, no automatic redirects; `login()` goes through the real form."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def page(self, path: str) -> httpx.Response:
        return self.client.get(path, headers={"Accept": "text/html"})

    def login(self, username: str = ADMIN, password: str = PASSWORD) -> httpx.Response:
        token = form_token(self.page("/login").text)
        return self.client.post(
            "/login", data={"username": username, "password": password, "csrf_token": token}
        )

    def submit(self, path: str, data: dict[str, Any], page: str | None = None) -> httpx.Response:
        """Post a form of `page` (default: `path`) with the token that page carries."""
        token = form_token(self.page(page or path).text)
        return self.client.post(path, data={**data, "csrf_token": token})

    @property
    def csrf(self) -> str:
        return self.client.cookies["postroom_csrf"]

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A script's call: the CSRF cookie's value in the X-CSRF-Token header."""
        headers = {"X-CSRF-Token": self.csrf, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "data")


ServerFactory = Callable[..., ServerThread]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """start_server(admin=True, clock=None, **config overrides) -> a running server."""
    started: list[ServerThread] = []

    def start(admin: bool = True, clock: Clock | None = None, **overrides: Any) -> ServerThread:
        cfg = make_config(tmp_path / "data", **overrides)
        if admin:
            create_admin(cfg)
        server = ServerThread(cfg, clock).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: ServerFactory) -> ServerThread:
    return start_server()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def browser(server: ServerThread) -> Iterator[Browser]:
    b = Browser(server.base_url)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def anonymous(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30, follow_redirects=False) as client:
        yield client
