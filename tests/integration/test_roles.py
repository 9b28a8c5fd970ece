"""`--roles`: a process opens only the parts of its roles (app.py's composition root)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from postroom.app import Application
from postroom.config import HostPort, load_config
from postroom.core.clock import FakeClock
from postroom.core.errors import ConfigError
from tests.harness import make_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize(
    ("roles", "doors", "jobs"),
    [
        (("smtp", "http", "delivery"), ("capture", "http"), {"delivery", "change-feed"}),
        (("delivery",), (), {"delivery"}),
        (("smtp",), ("capture",), set()),
        (("http",), ("http",), {"change-feed", "suppression-feed"}),
    ],
)
def test_a_process_opens_only_its_roles(
    tmp_path: Path, roles: tuple[str, ...], doors: tuple[str, ...], jobs: set[str]
) -> None:
    smtp, http = free_port(), free_port()
    config = make_config(
        tmp_path / "data",
        smtp=HostPort("127.0.0.1", smtp),
        http=HostPort("127.0.0.1", http),
        roles=roles,
        delivery=True,
    )
    app = Application(config, FakeClock())

    async def run() -> tuple[tuple[str, ...], tuple[str, ...], bool, bool]:
        await app.start()
        try:
            closed = await asyncio.to_thread(lambda: (refuses(smtp), refuses(http)))
            return app.listening(), app.jobs.names, *closed
        finally:
            await app.stop()

    listening, names, smtp_closed, http_closed = asyncio.run(run())
    assert listening == doors
    assert jobs <= set(names)
    if "delivery" not in roles:
        assert "delivery" not in names
    if "http" not in roles:
        assert not {"change-feed", "suppression-feed", "retention"} & set(names)
    assert smtp_closed == ("capture" not in doors) and http_closed == ("http" not in doors)


def test_roles_are_checked() -> None:
    assert load_config({"roles": "delivery, smtp"}, environ={}).roles == ("delivery", "smtp")
    assert load_config({}, environ={}).roles == ("smtp", "http", "delivery")
    with pytest.raises(ConfigError, match=r"--roles: expected one or more of smtp, http, delivery"):
        load_config({"roles": "smtp,mta"}, environ={})


def test_a_delivery_process_needs_no_admin_for_public_listeners(tmp_path: Path) -> None:
    """Its SMTP and HTTP addresses are not opened, so not checked either."""
    config = make_config(
        tmp_path / "data",
        smtp=HostPort("0.0.0.0", 0),
        http=HostPort("0.0.0.0", 0),
        roles=("delivery",),
    )
    app = Application(config, FakeClock())

    async def run() -> tuple[str, ...]:
        await app.start()
        try:
            return app.listening()
        finally:
            await app.stop()

    assert asyncio.run(run()) == ()
