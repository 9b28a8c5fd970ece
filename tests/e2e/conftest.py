"""End-to-end fixtures: a real Postroom server and Debian's headless Chromium driven by Playwright.

Chromium comes from the system (`/usr/bin/chromium`); Playwright's own browser download is never
used. Without it the tests skip with a "service unavailable:" reason (a failure under CI=true).

Screenshots of the main screens are written under each test's tmp_path (`screens/`); set
POSTROOM_SCREENSHOTS=/some/dir to also copy them there for a look.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from postroom.config import HostPort
from postroom.web import routes as web_routes
from tests.harness import ServerThread, make_config
from tests.services import require_executable

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.chromium


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Module scope, not session: sync Playwright keeps an event loop running in this thread while it
# is open, and pytest-asyncio cannot run the async tests of other modules meanwhile.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = require_executable("chromium", "/usr/bin/chromium")
    from playwright.sync_api import expect, sync_playwright

    # Generous, for a loaded machine: these are waits for a state, never timing assertions.
    expect.set_options(timeout=10_000)

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    # The tests assert that the shell carries the inbox's first page; on a loaded CI machine
    # its read took over the shell's 0.5 s wait once and the page came from the API instead
    # (the designed fallback, tested in tests/unit/web/test_routes.py). Wait longer here.
    monkeypatch.setattr(web_routes, "FIRST_PAGE_WAIT", 30.0)
    # A fixed (free) SMTP port, so the UI can show the real address it tells people to use.
    config = make_config(tmp_path / "data", smtp=HostPort("127.0.0.1", free_port()))
    srv = ServerThread(config).start()
    try:
        yield srv
    finally:
        srv.stop()


@dataclass
class Shots:
    directory: Path
    taken: list[Path] = field(default_factory=list)

    def take(self, page: Any, name: str, full_page: bool = False) -> Path:
        path = self.directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        extra = os.environ.get("POSTROOM_SCREENSHOTS")
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(extra) / path.name)
        return path


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    directory = tmp_path / "screens"
    directory.mkdir()
    return Shots(directory)


@dataclass
class PageProblems:
    """Everything a page reported that a working UI should not: JS errors, failed API calls."""

    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def page(context: Any, problems: PageProblems) -> Any:
    return watch(context.new_page(), problems)


def watch(page: Any, problems: PageProblems) -> Any:
    page.on("pageerror", lambda exc: problems.errors.append(str(exc)))
    page.on("console", lambda msg: problems.console.append(f"{msg.type}: {msg.text}"))

    def on_dialog(dialog: Any) -> None:
        problems.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return page
