"""The loopback rule: on loopback with no admin user everything stays open (local testing);
anywhere else the server refuses to start without an admin; once an admin exists, logging in
is needed even on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from postroom.api.auth import check_listen_policy, is_loopback
from postroom.app import Application
from postroom.config import HostPort
from postroom.core.clock import FakeClock
from postroom.core.errors import ConfigError
from postroom.platform.factory import open_platform
from tests.harness import make_config
from tests.integration.auth.conftest import ServerFactory, create_admin


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("postroom.localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.0.2.10", False),
        ("10.0.0.1", False),
        ("2001:db8::1", False),
        ("mail.example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_policy_check() -> None:
    check_listen_policy(HostPort("127.0.0.1", 8025), 0)
    check_listen_policy(HostPort("0.0.0.0", 8025), 1)
    with pytest.raises(ConfigError) as info:
        check_listen_policy(HostPort("0.0.0.0", 8025), 0)
    message = str(info.value)
    assert "--http 0.0.0.0:8025 is not a loopback address" in message
    assert "postroom admin create NAME" in message


def test_application_refuses_to_start_beyond_loopback_without_admin(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", http=HostPort("0.0.0.0", 0))
    app = Application(config, FakeClock())

    async def start() -> None:
        await app.start()

    with pytest.raises(ConfigError, match=r"postroom admin create NAME"):
        asyncio.run(start())
    # Nothing was left listening or open.
    assert app.listening() == ()
    assert app.store is not None and app.store._closed  # type: ignore[attr-defined]
    assert app.platform is None  # the platform store was closed too


def test_an_admin_lets_it_start_beyond_loopback(tmp_path: Path) -> None:
    """The check passes with an admin (the listener itself is not opened here: this test
    stays off every address but loopback)."""
    config = make_config(tmp_path / "data", http=HostPort("0.0.0.0", 0))
    create_admin(config)
    service = open_platform(config)
    try:
        check_listen_policy(config.http, len(service.list_admins()))
    finally:
        service.close()


def test_loopback_without_admin_is_open(start_server: ServerFactory) -> None:
    server = start_server(admin=False)
    with httpx.Client(base_url=server.base_url, follow_redirects=False) as client:
        assert client.get("/api/v1/messages").status_code == 200
        assert client.get("/api/v2/projects").status_code == 200
        assert client.get("/", headers={"Accept": "text/html"}).status_code == 200
        page = client.get("/admin/projects")
        assert page.status_code == 200
        assert "No admin user exists" in page.text
        login = client.get("/login")
        assert login.status_code == 200 and "has no admin user yet" in login.text


def test_an_admin_created_while_running_closes_the_door(
    start_server: ServerFactory, clock: FakeClock
) -> None:
    server = start_server(admin=False, clock=clock)
    with httpx.Client(base_url=server.base_url) as client:
        assert client.get("/api/v1/messages").status_code == 200
        create_admin(server.app.config)  # `postroom admin create` on the same database
        clock.advance(5)  # past the admin list's cache
        assert client.get("/api/v1/messages").status_code == 401
        assert client.get("/livez").status_code == 200


def test_the_ses_listener_beyond_loopback_needs_an_admin(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", ses=HostPort("0.0.0.0", 0))
    app = Application(config, FakeClock())

    async def start() -> None:
        await app.start()

    with pytest.raises(ConfigError, match=r"--ses 0\.0\.0\.0:0 is not a loopback address"):
        asyncio.run(start())
    assert app.listening() == ()


def test_the_mx_listener_beyond_loopback_needs_an_admin(tmp_path: Path) -> None:
    config = make_config(tmp_path / "data", mx=HostPort("0.0.0.0", 0))
    app = Application(config, FakeClock())

    async def start() -> None:
        await app.start()

    with pytest.raises(ConfigError, match=r"--mx 0\.0\.0\.0:0 is not a loopback address"):
        asyncio.run(start())
    assert app.listening() == ()
