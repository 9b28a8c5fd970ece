"""Moving through many messages (issue 12) in headless Chromium: j/k with a message open open
the next and previous one (one highlighted row), the view's previous/next buttons, a deep link
scrolls its row into view, Enter hands the focus to the message; Delete keeps the cursor on the
next row and offers Undo; checkboxes, shift-click and `x` select rows for bulk actions; tags
filter, in rows and in the sidebar with counts; the theme switch is remembered."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import PageProblems, Shots
from tests.harness import ServerThread

pytestmark = pytest.mark.chromium

ROWS = "#message-list a.row"


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def fill(server: ServerThread, count: int) -> list[str]:
    """`count` messages, "Message 00" oldest; every third tagged alpha, every fourth beta.
    Returns their IDs newest first (the list's order)."""
    ids = []
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for n in range(count):
            tags = [t for t, every in (("alpha", 3), ("beta", 4)) if n % every == 0]
            response = client.post(
                "/api/v1/send",
                json={
                    "From": {"Email": "app@example.com"},
                    "To": [{"Email": "bob@example.com"}],
                    "Subject": f"Message {n:02d}",
                    "Text": f"body {n:02d}",
                    "Tags": tags,
                },
            )
            response.raise_for_status()
            ids.append(response.json()["ID"])
    return ids[::-1]


def api(server: ServerThread, path: str) -> Any:
    response = httpx.get(server.base_url + path, timeout=10)
    response.raise_for_status()
    return response.json()


def highlighted(page: Any) -> list[str]:
    """The IDs of the rows drawn highlighted (cursor or open)."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('#message-list a.row')]
            .filter((a) => a.classList.contains('cursor') || a.hasAttribute('aria-current'))
            .map((a) => a.dataset.id)"""
    )
    return found


def clean(problems: PageProblems) -> None:
    assert problems.errors == [], problems.errors
    assert [c for c in problems.console if c.startswith("error:")] == [], problems.console


def test_keys_and_buttons_move_through_open_messages(
    server: ServerThread, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    ids = fill(server, 50)
    # A deep link to a message far down the page: its row is scrolled into view.
    page.goto(f"{server.base_url}/message/{ids[44]}")
    view = page.locator("#message")
    check(view.locator("h1")).to_have_text("Message 05")
    row = page.locator(f'{ROWS}[data-id="{ids[44]}"]')
    check(row).to_have_attribute("aria-current", "")
    check(row).to_be_in_viewport()
    assert highlighted(page) == [ids[44]]
    shots.take(page, "moving-01-deep-link")

    # j opens the next (older) message, k the previous; one highlighted row throughout.
    page.keyboard.press("j")
    check(view.locator("h1")).to_have_text("Message 04")
    check(page).to_have_url(f"{server.base_url}/message/{ids[45]}")
    assert highlighted(page) == [ids[45]]
    page.keyboard.press("k")
    page.keyboard.press("k")
    check(view.locator("h1")).to_have_text("Message 06")
    check(page).to_have_url(f"{server.base_url}/message/{ids[43]}")
    assert highlighted(page) == [ids[43]]

    # The view's buttons do the same; at the ends of the list they are disabled.
    view.get_by_role("button", name="Next message (j)").click()
    check(view.locator("h1")).to_have_text("Message 05")
    view.get_by_role("button", name="Previous message (k)").click()
    check(view.locator("h1")).to_have_text("Message 06")
    page.locator(f'{ROWS}[data-id="{ids[0]}"]').click()
    check(view.locator("h1")).to_have_text("Message 49")
    check(view.get_by_role("button", name="Previous message (k)")).to_be_disabled()
    check(view.get_by_role("button", name="Next message (j)")).to_be_enabled()
    page.locator(f'{ROWS}[data-id="{ids[-1]}"]').click()
    check(view.locator("h1")).to_have_text("Message 00")
    check(view.get_by_role("button", name="Next message (j)")).to_be_disabled()
    shots.take(page, "moving-02-last-message")

    # Back to the list; Enter on a row opens it and hands the focus to the message.
    page.keyboard.press("Escape")
    check(view).to_be_hidden()
    page.locator(f'{ROWS}[data-id="{ids[2]}"]').focus()
    page.keyboard.press("Enter")
    check(view.locator("h1")).to_have_text("Message 47")
    check(view).to_be_focused()
    page.keyboard.press("j")  # the keys still work from the message
    check(view.locator("h1")).to_have_text("Message 46")
    clean(problems)


def test_delete_keeps_the_cursor_and_undo_brings_the_message_back(
    server: ServerThread, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    ids = fill(server, 5)
    page.goto(server.base_url + "/")
    rows = page.locator(ROWS)
    check(rows).to_have_count(5)
    rows.nth(1).focus()
    page.keyboard.press("Delete")
    check(rows).to_have_count(4)
    # The cursor stays where it was: on the row that followed (Message 02).
    check(page.locator(f"{ROWS}.cursor")).to_have_attribute("data-id", ids[2])
    check(page.locator(f"{ROWS}.cursor")).to_be_focused()
    toast = page.locator("#toast")
    check(toast).to_contain_text("1 message deleted")
    shots.take(page, "moving-03-undo-toast")
    toast.get_by_role("button", name="Undo").click()
    check(rows).to_have_count(5)
    check(page.locator(f'{ROWS}[data-id="{ids[1]}"]')).to_have_count(1)
    check(toast).to_contain_text("1 message restored")
    assert api(server, "/api/v1/messages")["total"] == 5

    # Without Undo the delete is sent when the toast goes (or at the next delete).
    page.locator(f'{ROWS}[data-id="{ids[1]}"]').focus()
    page.keyboard.press("Delete")
    check(page.locator(f"{ROWS}.cursor")).to_have_attribute("data-id", ids[2])
    page.keyboard.press("Delete")  # this one sends the first
    check(rows).to_have_count(3)
    check(page.locator(f"{ROWS}.cursor")).to_have_attribute("data-id", ids[3])
    check(toast).to_be_hidden()  # the Undo window passed: the second is sent too
    remaining = [m["ID"] for m in api(server, "/api/v1/messages")["messages"]]
    assert remaining == [ids[0], ids[3], ids[4]]

    # With a message open, Delete opens the next one in its place (the cursor stays put, so
    # j then goes on from there instead of skipping a message).
    page.locator(f'{ROWS}[data-id="{ids[0]}"]').focus()
    page.keyboard.press("Enter")
    view = page.locator("#message")
    check(view.locator("h1")).to_have_text("Message 04")
    check(view).to_be_focused()
    page.keyboard.press("Delete")
    check(rows).to_have_count(2)
    check(view.locator("h1")).to_have_text("Message 01")
    check(page).to_have_url(f"{server.base_url}/message/{ids[3]}")
    assert highlighted(page) == [ids[3]]
    page.keyboard.press("j")
    check(view.locator("h1")).to_have_text("Message 00")
    # The last one deleted: nothing follows, the one before opens.
    page.keyboard.press("Delete")
    check(rows).to_have_count(1)
    check(view.locator("h1")).to_have_text("Message 01")
    clean(problems)


def test_select_act_filter_by_tag_and_switch_theme(
    server: ServerThread, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    ids = fill(server, 8)  # newest first: Message 07 .. Message 00
    page.goto(server.base_url + "/")
    rows = page.locator(ROWS)
    check(rows).to_have_count(8)
    checks = page.locator("#message-list input.row-check")
    bar = page.locator("#bulk-bar")
    check(bar).to_be_hidden()

    # A checkbox, then shift-click a later one: the range between; x adds the cursor's row.
    checks.nth(0).click()
    checks.nth(3).click(modifiers=["Shift"])
    check(page.locator("#bulk-count")).to_have_text("4 selected")
    rows.nth(6).focus()
    page.keyboard.press("x")
    check(page.locator("#bulk-count")).to_have_text("5 selected")
    check(page.locator("#select-all")).not_to_be_checked()
    shots.take(page, "moving-04-selected")
    bar.get_by_role("button", name="Mark read").click()
    check(bar).to_be_hidden()
    listed = {m["ID"]: m["Read"] for m in api(server, "/api/v1/messages")["messages"]}
    assert [listed[i] for i in ids] == [True, True, True, True, False, False, True, False]

    # Select all on the page, untick two, delete the rest (then undo is offered).
    page.locator("#select-all").check()
    check(page.locator("#bulk-count")).to_have_text("8 selected")
    checks.nth(0).click()
    checks.nth(1).click()
    bar.get_by_role("button", name="Delete").click()
    check(rows).to_have_count(2)
    check(page.locator("#toast")).to_contain_text("6 messages deleted")
    page.locator("#toast").get_by_role("button", name="Undo").click()
    check(rows).to_have_count(8)
    check(page.locator("#bulk-bar")).to_be_hidden()

    # Ticked rows and the Delete key: the ticked ones go (not only the row under the cursor).
    rows.nth(1).focus()
    page.keyboard.press("x")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("x")
    check(page.locator("#bulk-count")).to_have_text("2 selected")
    page.keyboard.press("Delete")
    check(rows).to_have_count(6)
    check(page.locator("#toast")).to_contain_text("2 messages deleted")
    check(page.locator("#bulk-bar")).to_be_hidden()
    gone = {ids[1], ids[3]}
    assert gone.isdisjoint(r.get_attribute("data-id") for r in rows.all())
    page.locator("#toast").get_by_role("button", name="Undo").click()
    check(rows).to_have_count(8)

    # The tag sidebar: each tag with its count; a click filters, and so does a row's tag.
    side = page.locator("#tag-side")
    check(side).to_be_visible()
    alpha = side.get_by_role("link", name=re.compile(r"^alpha"))
    beta = side.get_by_role("link", name=re.compile(r"^beta"))
    # Totals, and the unread among them (04 and 06 were marked read above).
    check(alpha.locator(".tag-total")).to_have_text("3")
    check(alpha.locator(".tag-unread")).to_have_text("2")
    check(beta.locator(".tag-total")).to_have_text("2")
    check(beta.locator(".tag-unread")).to_have_text("1")
    check(beta).to_have_accessible_name(re.compile(r"^beta ?\(2 messages, 1 unread\)$"))
    shots.take(page, "moving-05-tag-sidebar")
    alpha.click()
    check(page).to_have_url(f"{server.base_url}/?q=tag%3Aalpha")
    check(rows).to_have_count(3)  # 06, 03, 00
    check(alpha).to_have_attribute("aria-current", "page")
    side.get_by_role("link", name="All messages").click()
    check(rows).to_have_count(8)
    page.locator(f'{ROWS}[data-id="{ids[-1]}"] .tag', has_text="beta").click()
    check(page).to_have_url(f"{server.base_url}/?q=tag%3Abeta")
    check(rows).to_have_count(2)  # 04, 00
    check(page.locator("#message")).to_be_hidden()

    # The theme switch: system -> light -> dark, remembered across a reload and on the
    # admin pages (the server renders it: no flash of the other theme).
    toggle = page.locator("#theme-toggle")
    check(toggle).to_contain_text("System")
    toggle.click()
    check(page.locator("html")).to_have_attribute("data-theme", "light")
    toggle.click()
    check(page.locator("html")).to_have_attribute("data-theme", "dark")
    check(toggle).to_contain_text("Dark")
    page.reload()
    check(page.locator("html")).to_have_attribute("data-theme", "dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(255, 255, 255)", background
    shots.take(page, "moving-06-dark")
    page.goto(server.base_url + "/admin/projects")
    check(page.locator("html")).to_have_attribute("data-theme", "dark")
    check(page.locator("#theme-toggle")).to_contain_text("Dark")
    page.locator("#theme-toggle").click()
    check(page.locator("html")).not_to_have_attribute("data-theme", re.compile("."))
    clean(problems)
