"""Suspending a project's sending from its admin page in headless Chromium: the button asks
for confirmation (dismissed: nothing happens), the checkbox is required, the accepted form
suspends it (badge, time, reason, Resume button) and the project's key is refused at once;
Resume lifts it. No script errors under the strict CSP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from postroom.platform.factory import open_platform
from tests.e2e.admin.conftest import ADMIN, PASSWORD
from tests.e2e.conftest import Shots
from tests.harness import ServerThread

pytestmark = pytest.mark.chromium
SEND = {"From": {"Email": "a@example.com"}, "To": [{"Email": "u@example.com"}], "Subject": "s"}


def send(server: ServerThread, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{server.base_url}/api/v1/send", json=SEND, headers=headers, timeout=30)


def test_suspend_and_resume_with_the_buttons(
    admin_server: ServerThread, context: Any, shots: Shots
) -> None:
    from playwright.sync_api import expect

    service = open_platform(admin_server.app.config)
    try:
        service.create_project("shop", "Shop")
        token = service.create_api_key("shop", "app", ["send"]).token
    finally:
        service.close()
    page = context.new_page()  # not conftest's: this test answers the confirmations itself
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    questions: list[str] = []
    accept = {"now": False}

    def answer(dialog: Any) -> None:
        questions.append(dialog.message)
        if accept["now"]:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    base = admin_server.base_url
    page.goto(base + "/admin/projects/shop")
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(base + "/admin/projects/shop")

    form = page.locator("form[action='/admin/projects/shop/suspend']")
    form.get_by_label("Reason (optional)").fill("unpaid invoices")
    button = form.get_by_role("button", name="Suspend sending")
    button.click()  # the required box is not ticked: the browser does not post
    assert questions == []
    form.get_by_label("Refuse every message of this project", exact=False).check()
    button.click()  # asked, and dismissed: nothing posted
    assert questions == [
        "Suspend project shop? Every door refuses its mail until an admin resumes it."
    ]
    expect(page).to_have_url(base + "/admin/projects/shop")
    assert send(admin_server, token).status_code == 200

    accept["now"] = True
    button.click()
    expect(page).to_have_url(base + "/admin/projects/shop?done=project-suspended")
    expect(page.get_by_role("status").first).to_contain_text("Sending suspended")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Suspended")
    expect(page.get_by_role("alert").first).to_contain_text(": unpaid invoices.")
    shots.take(page, "suspension-01-suspended", full_page=True)
    refused = send(admin_server, token)
    assert refused.status_code == 403 and refused.json()["Field"] == "account_suspended"

    page.get_by_role("button", name="Resume sending").click()
    assert questions[-1] == "Let project shop send again?"
    expect(page).to_have_url(base + "/admin/projects/shop?done=project-resumed")
    expect(page.get_by_role("status").first).to_contain_text("Suspension lifted")
    expect(page.get_by_role("button", name="Suspend sending")).to_be_visible()
    assert send(admin_server, token).status_code == 200
    assert errors == []
