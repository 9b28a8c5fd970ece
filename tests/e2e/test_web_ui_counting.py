"""A search's rows come before its count (counts=skip, issue 12): while the exact count is on
its way the list says "… matches (counting)" and Older follows the page's `more`; when the count
arrives it replaces that. The count request is held back in Chromium to see the first state."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import PageProblems, Shots
from tests.e2e.mail import send, simple
from tests.e2e.test_web_ui import ROWS, expect, no_page_errors, wait_until
from tests.harness import ServerThread

pytestmark = pytest.mark.chromium


def test_rows_first_then_the_count(
    server: ServerThread, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    for i in range(30):
        send(server.smtp_port, simple(f"Weekly digest {i}", sender="news@shop.example"))
    send(server.smtp_port, simple("Password reset", sender="security@shop.example"))
    page.context.add_cookies(
        [{"name": "postroom_page_size", "value": "25", "url": server.base_url}]
    )
    held: list[Any] = []
    page.route("**/api/v1/search?limit=0*", lambda route: held.append(route))

    page.goto(server.base_url + "/?q=digest")
    check(page.locator(ROWS)).to_have_count(25)
    count = page.locator("#list-count")
    check(count).to_have_text("1–25 of … matches (counting)")
    check(page.get_by_role("button", name="Older messages")).to_be_enabled()  # `more` says so
    shots.take(page, "counting")
    # The count is asked for after the rows show, and the route callback runs only when
    # Playwright dispatches its event: wait for it rather than assume it already ran.
    wait_until(page, lambda: len(held) >= 1, "the count request reaches the route")
    assert len(held) == 1 and "query=digest" in held[0].request.url

    held[0].continue_()
    check(count).to_have_text("1–25 of 30 matches")
    check(page.get_by_role("button", name="Older messages")).to_be_enabled()
    page.get_by_role("button", name="Older messages").click()
    check(page.locator(ROWS)).to_have_count(5)
    # The next page's count is asked for again and may be answered at once.
    wait_until(page, lambda: len(held) >= 2, "the next page's count request reaches the route")
    held[1].continue_()
    check(count).to_have_text("26–30 of 30 matches")
    check(page.get_by_role("button", name="Older messages")).to_be_disabled()
    no_page_errors(problems)
