"""The confirmation page of an address verification mail, in Chromium.

The link of the queued verification mail opens a page that shows the project and the address
and changes nothing; pressing its button posts the token as JSON, under the default
Content-Security-Policy (no inline script), and the address is verified. A link that was used
shows the problem and no button.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from postroom.config import HostPort
from postroom.core.platform import SYSTEM_PROJECT
from tests.e2e.conftest import PageProblems, Shots, free_port
from tests.harness import ServerThread, make_config
from tests.proofmail import link_in

pytestmark = pytest.mark.chromium

ADDRESS = "ops@example.net"


@pytest.fixture
def public_server(tmp_path: Path) -> Iterator[ServerThread]:
    """Links name the server by --public-url (localhost, on a port chosen beforehand)."""
    port = free_port()
    config = make_config(
        tmp_path / "data",
        http=HostPort("127.0.0.1", port),
        public_url=f"http://localhost:{port}",
    )
    srv = ServerThread(config).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_the_button_confirms_and_the_get_does_not(
    public_server: ServerThread, page: Any, problems: PageProblems, shots: Shots
) -> None:
    from playwright.sync_api import expect

    service = public_server.app.platform_service
    assert service is not None
    service.create_project("acme")
    key = service.create_api_key("acme", "ops", ["manage"]).token
    with httpx.Client(
        base_url=public_server.base_url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as api:
        added = api.post("/api/v2/projects/acme/verified-addresses", json={"address": ADDRESS})
        assert added.status_code == 201, added.text
        store = public_server.app.store
        assert store is not None
        (record,) = store.list(SYSTEM_PROJECT, None, 0, 10).messages
        link = link_in(store.raw(SYSTEM_PROJECT, record.id))
        assert link.startswith(f"http://localhost:{public_server.app.http_port}/confirm-address?")

        def status() -> str:
            listed = api.get("/api/v2/projects/acme/verified-addresses").json()["addresses"]
            return str(listed[0]["status"])

        page.goto(link)
        expect(page.locator("h1")).to_have_text("Confirm an address")
        expect(page.locator("#confirm-box")).to_contain_text(
            f"Project acme asks to send mail as {ADDRESS}"
        )
        shots.take(page, "confirm-address")
        assert status() == "pending"  # the page itself changed nothing
        page.get_by_role("button", name=f"Confirm {ADDRESS}").click()
        expect(page.locator("#confirm-result")).to_have_text(
            f"Confirmed: project acme may now send mail as {ADDRESS}."
        )
        expect(page.locator("#confirm-box")).to_be_hidden()
        assert status() == "verified"

        page.goto(link)  # used: the problem, and no button
        expect(page.get_by_role("alert")).to_contain_text("was used already")
        expect(page.get_by_role("button")).to_have_count(0)
    assert problems.errors == [] and problems.dialogs == []
    # the 400 of the used link is the only complaint the browser logged
    assert all("400" in line for line in problems.console), problems.console
