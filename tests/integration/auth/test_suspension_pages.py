"""The project page's Suspend sending form, as a browser without JavaScript posts it: the
checkbox must confirm it (a 400 page naming the box otherwise), a bad reason is refused on the
page, the CSRF token is required; once suspended the page shows the badge, the time and reason
and a Resume button, the project's mail is refused (its API key's send: 403), and resuming
lifts it."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from tests.harness import ServerThread
from tests.integration.auth.conftest import Browser, ServerFactory

BASE = "/admin/projects/acme"
SEND = {
    "From": {"Email": "app@example.com"},
    "To": [{"Email": "user@example.com"}],
    "Subject": "s",
    "Text": "t",
}


@pytest.fixture
def server(start_server: ServerFactory) -> ServerThread:
    return start_server()


@pytest.fixture
def admin(browser: Browser) -> Browser:
    assert browser.login().status_code == 303
    made = browser.submit(
        "/admin/projects",
        {"id": "acme", "name": "Acme", "mode": "capture", "daily_quota": "", "rate_limit": ""},
    )
    assert made.status_code == 303
    return browser


def text(response: httpx.Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def send(server: ServerThread, token: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/v1/send",
        json=SEND,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_suspend_and_resume_from_the_project_page(admin: Browser, server: ServerThread) -> None:
    service = server.app.platform_service
    assert service is not None
    token = service.create_api_key("acme", "app", ["send"]).token
    assert send(server, token).status_code == 200

    page = admin.page(BASE)
    assert page.status_code == 200
    assert 'action="/admin/projects/acme/suspend"' in page.text
    assert "data-confirm=" in page.text and "Suspended" not in text(page)

    unconfirmed = admin.submit(BASE + "/suspend", {"reason": "fraud"}, BASE)
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm" in text(unconfirmed)
    assert (
        'id="confirm-suspend" type="checkbox" name="confirm" value="yes" required aria-invalid="true"'
        in unconfirmed.text
    )
    too_long = admin.submit(BASE + "/suspend", {"reason": "x" * 501, "confirm": "yes"}, BASE)
    assert too_long.status_code == 400 and "longer than 500" in text(too_long)
    forged = admin.client.post(BASE + "/suspend", data={"confirm": "yes"})
    assert forged.status_code == 403
    assert service.get_project("acme").suspended is None

    done = admin.submit(BASE + "/suspend", {"reason": "fraud <b>", "confirm": "yes"}, BASE)
    assert done.status_code == 303
    assert done.headers["location"] == BASE + "?done=project-suspended"
    shown = admin.page(done.headers["location"])
    assert "Sending suspended: every door refuses" in text(shown)
    assert "Suspended" in text(shown) and ": fraud <b>." in text(shown)
    assert "fraud &lt;b&gt;" in shown.text  # escaped
    assert 'action="/admin/projects/acme/resume"' in shown.text
    listed = admin.page("/admin/projects").text
    assert '<span class="pill error">Suspended</span>' in listed
    refused = send(server, token)
    assert refused.status_code == 403
    assert refused.json()["Field"] == "account_suspended"
    assert refused.json()["Error"].endswith("(fraud <b>)")

    resumed = admin.submit(BASE + "/resume", {}, BASE)
    assert resumed.status_code == 303
    assert resumed.headers["location"] == BASE + "?done=project-resumed"
    again = admin.page(resumed.headers["location"])
    assert "Suspension lifted" in text(again)
    assert 'action="/admin/projects/acme/suspend"' in again.text
    assert send(server, token).status_code == 200
    twice = admin.submit(BASE + "/resume", {}, BASE)
    assert twice.status_code == 400 and "is not suspended" in text(twice)
    missing = admin.submit("/admin/projects/ghost/suspend", {"confirm": "yes"}, BASE)
    assert missing.status_code == 404
