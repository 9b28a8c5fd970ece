"""Every project's mail in one inbox (issue 12): the project switcher with unread counts, the
project in the URL (`/p/<project>/`), live updates, search, actions and the title per project;
who is signed in, with links to the admin pages and log out, in the top bar the admin pages
share; a key session sees its own project only, and no key reaches another project's mail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from postroom.config import HostPort
from postroom.platform.factory import open_platform
from tests.e2e.conftest import PageProblems, Shots, free_port
from tests.e2e.mail import send, simple
from tests.harness import ServerThread, make_config

pytestmark = pytest.mark.chromium

ROWS = "#message-list a.row"
ADMIN, PASSWORD = "ada", "a long enough passphrase"


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def start(tmp_path: Path, admin: bool) -> tuple[ServerThread, dict[str, str]]:
    """A server with projects team-a ("Team A") and team-b; returns it and API keys by name."""
    config = make_config(tmp_path / "data", smtp=HostPort("127.0.0.1", free_port()))
    service = open_platform(config)
    keys = {}
    try:
        if admin:
            service.create_admin(ADMIN, PASSWORD)
        service.create_project("team-a", "Team A")
        service.create_project("team-b")
        keys["a-read"] = service.create_api_key("team-a", "a reader", ["read", "send"]).token
        keys["a-send"] = service.create_api_key("team-a", "a sender", ["send"]).token
        keys["b-send"] = service.create_api_key("team-b", "b sender", ["send"]).token
        keys["b-read"] = service.create_api_key("team-b", "b reader", ["read"]).token
    finally:
        service.close()
    return ServerThread(config).start(), keys


@pytest.fixture
def open_server(tmp_path: Path) -> Iterator[tuple[ServerThread, dict[str, str]]]:
    srv, keys = start(tmp_path, admin=False)
    try:
        yield srv, keys
    finally:
        srv.stop()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[ServerThread, dict[str, str]]]:
    srv, keys = start(tmp_path, admin=True)
    try:
        yield srv, keys
    finally:
        srv.stop()


def send_into(server: ServerThread, key: str, subject: str) -> str:
    """A message into a key's project through the testing API's send (as a test suite would)."""
    response = httpx.post(
        f"{server.base_url}/api/v1/send",
        json={
            "From": {"Email": "app@example.com"},
            "To": [{"Email": "user@example.com"}],
            "Subject": subject,
            "Text": f"body of {subject}",
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    message_id: str = response.json()["ID"]
    return message_id


def clean(problems: PageProblems) -> None:
    assert problems.errors == [], problems.errors
    failures = [c for c in problems.console if c.startswith("error:")]
    assert failures == [], failures


def test_switch_projects_live_search_and_actions_per_project(
    open_server: tuple[ServerThread, dict[str, str]],
    page: Any,
    shots: Shots,
    problems: PageProblems,
) -> None:
    check = expect()
    server, keys = open_server
    send(server.smtp_port, simple("Default one"))
    send(server.smtp_port, simple("Default two"))
    send_into(server, keys["a-send"], "Alpha invoice")
    send_into(server, keys["a-send"], "Alpha welcome")
    send_into(server, keys["b-send"], "Bravo only")

    page.goto(server.base_url + "/")
    rows = page.locator(ROWS)
    check(rows).to_have_count(2)
    check(page).to_have_title("(2) Default · Postroom")
    switcher = page.locator("#projects")
    check(switcher).to_be_visible()
    page.locator("#projects-toggle").click()
    menu = page.locator("#projects-menu a")
    check(menu).to_have_count(3)
    team_a = menu.filter(has_text="Team A")
    check(team_a).to_contain_text("2")  # unread
    check(menu.filter(has_text="team-b")).to_contain_text("1")
    check(menu.filter(has_text="Default")).to_have_attribute("aria-current", "page")
    shots.take(page, "projects-01-switcher-open")

    team_a.click()
    check(page).to_have_url(server.base_url + "/p/team-a/")
    check(rows).to_have_count(2)
    check(rows.first).to_contain_text("Alpha welcome")
    check(page.locator("#project-name")).to_have_text("Team A")
    check(page.locator("#project-unread")).to_have_text("2")
    check(page).to_have_title("(2) Team A · Postroom")
    check(page.locator("#live-status")).to_have_attribute("data-state", "live")

    # Live per project: team-a's mail shows up, the default project's and team-b's do not.
    send(server.smtp_port, simple("Default three"))
    send_into(server, keys["b-send"], "Bravo two")
    send_into(server, keys["a-send"], "Alpha live")
    check(rows).to_have_count(3)
    check(rows.first).to_contain_text("Alpha live")
    check(page).to_have_title("(3) Team A · Postroom")
    check(page.locator(ROWS, has_text="Default three")).to_have_count(0)
    check(page.locator(ROWS, has_text="Bravo")).to_have_count(0)

    # Open a message: the URL names the project; a reload lands on the same message.
    rows.filter(has_text="Alpha invoice").click()
    check(page).to_have_url(re.compile(r"/p/team-a/message/[0-9A-Za-z]+$"))
    check(page.locator("#message")).to_contain_text("body of Alpha invoice")
    check(page).to_have_title("(2) Team A · Postroom")
    page.reload()
    check(page.locator("#message")).to_contain_text("body of Alpha invoice")
    shots.take(page, "projects-02-team-a-message")

    # Search within the project only.
    page.locator("#search").fill("Alpha")
    check(rows).to_have_count(3)
    check(page).to_have_url(re.compile(r"/p/team-a/message/[^?]+\?q=Alpha$"))
    page.locator("#search").fill("Default")
    check(page.locator("#list-state")).to_contain_text("No messages match")
    page.locator("#search").fill("")
    check(rows).to_have_count(3)

    # Actions act on this project: delete one, mark all read.
    rows.filter(has_text="Alpha welcome").click()
    page.get_by_role("button", name="Delete message").click()
    check(rows).to_have_count(2)
    page.get_by_role("button", name="Mark all as read").click()
    check(page).to_have_title("Team A · Postroom")
    check(page.locator("#project-unread")).to_be_hidden()

    a = httpx.get(f"{server.base_url}/p/team-a/api/v1/messages", timeout=10).json()
    assert [m["Subject"] for m in a["messages"]] == ["Alpha live", "Alpha invoice"]
    assert a["unread"] == 0
    default = httpx.get(f"{server.base_url}/api/v1/messages", timeout=10).json()
    assert default["total"] == 3 and default["unread"] == 3  # untouched
    b = httpx.get(f"{server.base_url}/p/team-b/api/v1/messages", timeout=10).json()
    assert b["total"] == 2

    # The switcher's counts follow: team-a has none unread now, team-b two.
    page.locator("#projects-toggle").click()
    check(menu.filter(has_text="team-b")).to_contain_text("2")
    check(menu.filter(has_text="Team A").locator(".unread-badge")).to_have_count(0)
    shots.take(page, "projects-03-after-actions")
    page.keyboard.press("Escape")
    check(switcher).not_to_have_attribute("open", "")

    # An unknown project is a clear 404, not an empty inbox.
    missing = httpx.get(f"{server.base_url}/p/nope/api/v1/messages", timeout=10)
    assert missing.status_code == 404 and missing.json()["Field"] == "project"
    # A new, empty project says how mail reaches it (not the default project's SMTP hint).
    created = httpx.post(f"{server.base_url}/api/v2/projects", json={"id": "fresh"}, timeout=10)
    assert created.status_code == 201, created.text
    page.goto(server.base_url + "/p/fresh/")
    check(page.locator("#list-state")).to_contain_text("through a capture route")
    check(page).to_have_title("fresh · Postroom")
    clean(problems)


def test_key_session_sees_its_project_only_and_keys_never_cross_projects(
    guarded: tuple[ServerThread, dict[str, str]],
    page: Any,
    shots: Shots,
    problems: PageProblems,
) -> None:
    check = expect()
    server, keys = guarded
    send(server.smtp_port, simple("Default secret"))
    a_id = send_into(server, keys["a-send"], "Alpha for the reader")
    b_id = send_into(server, keys["b-send"], "Bravo private")
    base = server.base_url

    # The API: a key reads its own project, by either path, and nothing of another one.
    reader = {"Authorization": f"Bearer {keys['a-read']}"}
    own = httpx.get(f"{base}/api/v1/messages", headers=reader, timeout=10).json()
    assert [m["Subject"] for m in own["messages"]] == ["Alpha for the reader"]
    named = httpx.get(f"{base}/p/team-a/api/v1/messages", headers=reader, timeout=10)
    assert named.status_code == 200 and named.json()["total"] == 1
    for path in (
        "/p/team-b/api/v1/messages",
        f"/p/team-b/api/v1/message/{b_id}",
        f"/p/team-b/view/{b_id}.html",
        "/p/team-b/api/v1/events",
        "/p/default/api/v1/messages",
    ):
        refused = httpx.get(base + path, headers=reader, timeout=10)
        assert refused.status_code == 403, (path, refused.text)
        assert "team-a" in refused.json()["Error"]
    wrong_id = httpx.get(f"{base}/api/v1/message/{b_id}", headers=reader, timeout=10)
    assert wrong_id.status_code == 404
    deleted = httpx.request(
        "DELETE",
        f"{base}/p/team-b/api/v1/messages",
        json={"IDs": [b_id]},
        headers=reader,
        timeout=10,
    )
    assert deleted.status_code == 403
    bravo = {"Authorization": f"Bearer {keys['b-read']}"}
    still = httpx.get(f"{base}/api/v1/message/{b_id}", headers=bravo, timeout=10)
    assert still.status_code == 200 and still.json()["Subject"] == "Bravo private"
    # A send-only key cannot sign in to the inbox; nor can anyone without a login.
    assert httpx.get(f"{base}/p/team-a/api/v1/messages", timeout=10).status_code == 401

    # The browser: sign in with team-a's read key.
    page.goto(base + "/")
    check(page).to_have_url(re.compile(r"/login"))
    page.get_by_text("Sign in with an API key").click()
    page.get_by_label("API key").fill(keys["a-send"])
    page.get_by_role("button", name="Sign in with the key").click()
    check(page.get_by_role("alert")).to_contain_text("lacks the read scope")
    problems.console.clear()  # the refused sign-in is a 403 on the console: expected
    page.get_by_label("API key").fill(keys["a-read"])
    page.get_by_role("button", name="Sign in with the key").click()
    check(page).to_have_url(base + "/p/team-a/")
    rows = page.locator(ROWS)
    check(rows).to_have_count(1)
    check(rows.first).to_contain_text("Alpha for the reader")
    who = page.locator("#who")
    check(who).to_contain_text("Signed in with key a reader")
    check(who).to_contain_text("team-a")
    check(page.get_by_role("link", name="Admin", exact=True)).to_have_count(0)
    check(page.locator("#live-status")).to_have_attribute("data-state", "live")
    # Its one project is named, and the switcher offers nothing else.
    check(page.locator("#project-name")).to_have_text("Team A")
    page.locator("#projects-toggle").click()
    check(page.locator("#projects-menu a")).to_have_count(1)
    shots.take(page, "projects-04-key-session")
    page.keyboard.press("Escape")

    # Live for its project; another project's mail never reaches it, even asked for by name.
    send_into(server, keys["a-send"], "Alpha live")
    check(rows).to_have_count(2)
    send_into(server, keys["b-send"], "Bravo live")
    send(server.smtp_port, simple("Default live"))
    status = page.evaluate(
        """async (ids) => {
            const out = {};
            for (const [name, path] of Object.entries(ids)) {
                const r = await fetch(path, { cache: 'no-store' });
                out[name] = r.status;
            }
            const list = await (await fetch('/ui/projects')).json();
            out.projects = list.Projects.map((p) => p.ID).join(',');
            return out;
        }""",
        {
            "other": "/p/team-b/api/v1/messages",
            "other_view": f"/p/team-b/view/{b_id}.txt",
            "default": "/p/default/api/v1/messages",
            "bare_other_id": f"/api/v1/message/{b_id}",
            "admin": "/admin/projects",
            "own": f"/api/v1/message/{a_id}",
        },
    )
    assert status == {
        "other": 403,
        "other_view": 403,
        "default": 403,
        "bare_other_id": 404,
        "admin": 403,
        "own": 200,
        "projects": "team-a",
    }, status
    check(page.locator(ROWS, has_text="Bravo")).to_have_count(0)
    check(page.locator(ROWS, has_text="Default")).to_have_count(0)
    # A change by cookie needs the CSRF token (the inbox sends it): delete one.
    rows.filter(has_text="Alpha live").click()
    page.get_by_role("button", name="Delete message").click()
    check(rows).to_have_count(1)
    forged = page.evaluate(
        """async () => (await fetch('/api/v1/messages', {method: 'DELETE',
            headers: {'Content-Type': 'application/json'}, body: '{"IDs": []}'})).status"""
    )
    assert forged == 403

    page.get_by_role("button", name="Log out").click()
    check(page).to_have_url(re.compile(r"/login"))
    problems.console.clear()  # the probes above logged their 403s and 404s on purpose
    clean(problems)


def test_admin_sees_every_project_and_shares_the_top_bar_with_the_admin_pages(
    guarded: tuple[ServerThread, dict[str, str]],
    page: Any,
    shots: Shots,
    problems: PageProblems,
) -> None:
    check = expect()
    server, keys = guarded
    send(server.smtp_port, simple("Default mail"))
    send_into(server, keys["b-send"], "Bravo mail")
    base = server.base_url

    page.goto(base + "/p/team-b/")
    check(page).to_have_url(re.compile(r"/login\?next=/p/team-b/"))
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    check(page).to_have_url(base + "/p/team-b/")
    rows = page.locator(ROWS)
    check(rows).to_have_count(1)
    check(rows.first).to_contain_text("Bravo mail")
    who = page.locator("#who")
    check(who).to_contain_text(f"Signed in as {ADMIN}")
    check(page.get_by_role("link", name="Inbox", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    page.locator("#projects-toggle").click()
    check(page.locator("#projects-menu a")).to_have_count(3)
    shots.take(page, "projects-05-admin-inbox")
    page.keyboard.press("Escape")

    # The admin pages: the same top bar, with the inbox one click away.
    page.get_by_role("link", name="Admin", exact=True).click()
    check(page).to_have_url(base + "/admin/projects")
    check(page.locator("header.topbar #who")).to_contain_text(f"Signed in as {ADMIN}")
    check(page.get_by_role("link", name="Admin", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    inbox_bar = page.locator("header.topbar")
    box = inbox_bar.bounding_box()
    assert box is not None and box["y"] == 0
    shots.take(page, "projects-06-admin-pages")
    page.get_by_role("link", name="Inbox", exact=True).click()
    check(page).to_have_url(base + "/")
    check(rows).to_have_count(1)
    check(rows.first).to_contain_text("Default mail")

    page.get_by_role("button", name="Log out").click()
    check(page).to_have_url(re.compile(r"/login"))
    assert httpx.get(f"{base}/p/team-b/api/v1/messages", timeout=10).status_code == 401
    clean(problems)
