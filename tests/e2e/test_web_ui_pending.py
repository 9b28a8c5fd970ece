"""The web UI's deletes are refused, with the server's sentence, for a message whose recipients
are still to be delivered to; the message stays listed and nothing else goes either."""

from __future__ import annotations

import dataclasses
from typing import Any

from postroom.core.clock import FakeClock
from postroom.pipeline.deliveries import deliveries_for
from tests.e2e.conftest import PageProblems, Shots
from tests.e2e.mail import send, simple
from tests.e2e.test_web_ui import ROWS, api_messages, expect, no_page_errors
from tests.harness import ServerThread
from tests.integration.storage.factory import make_message


def add_pending(server: ServerThread) -> str:
    """A message with one delivery still to make, stored as the pipeline stores a live
    message's (the UI shows one project; which one does not matter to the store)."""
    message = make_message(
        FakeClock(), subject="Order shipped", to=("ann@example.net",), status="queued"
    )
    message = dataclasses.replace(message, deliveries=deliveries_for(message.envelope))
    store = server.app.store
    assert store is not None
    server.call(store.add(message))
    return message.id


def test_deleting_a_message_with_pending_deliveries_shows_why_and_keeps_it(
    server: ServerThread, page: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    pending = add_pending(server)
    send(server.smtp_port, simple("Captured one"))
    page.goto(server.base_url + "/")
    rows = page.locator(ROWS)
    check(rows).to_have_count(2)
    toast = page.locator("#toast")

    # Delete all: refused whole, with the server's reason; both rows stay.
    page.get_by_role("button", name="Delete all messages").click()
    page.locator("dialog#confirm").get_by_role("button", name="Delete all").click()
    check(toast).to_contain_text("Nothing was deleted: 1 message has 1 delivery pending")
    check(toast).to_contain_text(f"{pending} to ann@example.net")
    check(rows).to_have_count(2)
    shots.take(page, "pending-delete-refused")
    assert api_messages(server)["total"] == 2

    # The Delete key on that row: once the Undo window passes, the row comes back with the
    # same reason.
    page.locator(f'{ROWS}[data-id="{pending}"]').focus()
    page.keyboard.press("Delete")
    check(toast).to_contain_text("1 delivery pending")
    check(page.locator(f'{ROWS}[data-id="{pending}"]')).to_have_count(1)

    # The captured message deletes as before.
    other = next(m["ID"] for m in api_messages(server)["messages"] if m["ID"] != pending)
    page.locator(f'{ROWS}[data-id="{other}"]').focus()
    page.keyboard.press("Delete")
    check(rows).to_have_count(1)
    check(toast).to_be_hidden()  # the Undo window passed: the delete is sent
    assert [m["ID"] for m in api_messages(server)["messages"]] == [pending]
    # The two refusals are the only failed requests (Chromium logs each), and nothing broke.
    refused = "error: Failed to load resource: the server responded with a status of 409"
    assert [line for line in problems.console if line.startswith("error:")] == [
        f"{refused} (Conflict)"
    ] * 2
    problems.console.clear()
    no_page_errors(problems)
