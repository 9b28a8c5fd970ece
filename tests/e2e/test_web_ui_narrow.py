"""The inbox and the admin pages on a 375 px touch screen (issue 12): every button, link and row
action is a 44 px target, and no page scrolls sideways."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from postroom.core.clock import FakeClock
from postroom.core.types import Attempt
from postroom.pipeline.deliveries import deliveries_for
from tests.e2e.conftest import PageProblems, Shots, watch
from tests.e2e.mail import rich, send, simple
from tests.e2e.test_web_ui_moving import ROWS, clean, expect
from tests.harness import ServerThread
from tests.integration.storage.factory import make_message

pytestmark = pytest.mark.chromium

TARGET = 44  # px, each side (WCAG 2.5.5, Apple's and Google's guidance)

# Every visible thing a finger may press: its name and its box, when smaller than TARGET.
SMALL_TARGETS = """(target) => {
    const out = [];
    const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, '
        + '[role=tab], [role=separator][tabindex], [tabindex]:not([tabindex="-1"])';
    for (const el of document.querySelectorAll(selector)) {
        if (!el.getClientRects().length) continue;
        const style = getComputedStyle(el);
        if (style.visibility === 'hidden' || style.pointerEvents === 'none') continue;
        if (el.closest('.sr-only, [hidden], [inert]')) continue;
        if (el.tagName === 'PRE' || el.tagName === 'TABLE') continue;  // scrollable regions
        // A link inside a sentence is text (WCAG 2.5.8's inline exception).
        const parentText = el.parentElement ? el.parentElement.textContent.trim() : '';
        if (el.tagName === 'A' && style.display === 'inline'
            && parentText.length > el.textContent.trim().length + 2) continue;
        // A checkbox inside (or named by) a label is tapped through its label.
        let box = el;
        if (el.type === 'checkbox' || el.type === 'radio') {
            const label = el.closest('label')
                || (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`));
            if (label) box = label;
        }
        const r = box.getBoundingClientRect();
        if (r.right <= 0 || r.left >= innerWidth || r.bottom <= 0) continue;  // off screen
        if (r.width < target || r.height < target) {
            const name = el.getAttribute('aria-label') || el.textContent.trim().slice(0, 30)
                || el.id || el.className;
            out.push(`${el.tagName.toLowerCase()}.${el.className} "${name}" `
                + `${Math.round(r.width)}x${Math.round(r.height)}`);
        }
    }
    return out;
}"""

OVERFLOW = "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
# Boxes of their own that scroll sideways (a table in a scrolling wrapper, a tab strip).
SIDEWAYS = """() => [...document.querySelectorAll('.table-wrap, .tabs, nav, main, section, .card')]
    .filter((el) => el.scrollWidth > el.clientWidth + 1
        && ['auto', 'scroll'].includes(getComputedStyle(el).overflowX))
    .map((el) => `${el.tagName.toLowerCase()}.${el.className} ${el.scrollWidth}>${el.clientWidth}`)"""


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(
        viewport={"width": 375, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
    )
    ctx.set_default_timeout(10_000)
    try:
        yield ctx
    finally:
        ctx.close()


def no_small_targets(page: Any, where: str = "") -> None:
    found: list[str] = page.evaluate(SMALL_TARGETS, TARGET)
    assert not found, f"{where}: " + "\n".join(found)


def test_every_inbox_target_is_44px_at_375px(
    server: ServerThread, phone: Any, shots: Shots, problems: PageProblems
) -> None:
    check = expect()
    send(server.smtp_port, simple("Plain one", tags="alpha, beta, gamma, delta"))
    send(server.smtp_port, rich())
    page = watch(phone.new_page(), problems)
    page.goto(server.base_url + "/")
    rows = page.locator(ROWS)
    check(rows).to_have_count(2)
    no_small_targets(page)
    assert page.evaluate(OVERFLOW) <= 0
    shots.take(page, "narrow-01-list")

    # Ticked rows bring the bulk bar; its buttons too.
    page.locator("#message-list input.row-check").first.tap()
    check(page.locator("#bulk-bar")).to_be_visible()
    no_small_targets(page)
    shots.take(page, "narrow-02-selected")
    page.get_by_role("button", name="Clear").tap()

    # Compact rows stay tall enough to tap.
    page.get_by_role("button", name="Compact rows").tap()
    check(page.locator("html")).to_have_attribute("data-density", "compact")
    for index in range(2):  # one line that still shows whom from and what about
        subject = rows.nth(index).locator(".row-line").bounding_box()
        sender = rows.nth(index).locator(".row-from").bounding_box()
        assert subject is not None and subject["width"] >= 80, subject
        assert sender is not None and sender["width"] >= 60, sender
        assert abs(subject["y"] - sender["y"]) < 8, (subject, sender)
    no_small_targets(page)
    assert page.evaluate(OVERFLOW) <= 0
    shots.take(page, "narrow-03-compact")

    # The message view, on each of its tabs, and the search help.
    rows.first.tap()
    view = page.locator("#message")
    check(view.locator("h1")).to_have_text("Your invoice #42")
    check(page.locator("iframe.html-frame")).to_be_visible()
    no_small_targets(page)
    assert page.evaluate(OVERFLOW) <= 0
    shots.take(page, "narrow-04-message")
    tabs = view.get_by_role("tab")
    names = [name.strip() for name in tabs.all_inner_texts()]
    assert len(names) >= 4, names
    for index in range(len(names)):
        tabs.nth(index).tap()
        check(tabs.nth(index)).to_have_attribute("aria-selected", "true")
        page.wait_for_timeout(150)  # let the panel settle (the checks load on demand)
        no_small_targets(page, names[index])
        assert page.evaluate(OVERFLOW) <= 0, names[index]
        # The tab strip wraps: no tab is scrolled out of sight.
        assert page.evaluate(SIDEWAYS) == [], names[index]
        tab_box = tabs.nth(index).bounding_box()
        assert tab_box is not None and tab_box["x"] >= 0 and tab_box["x"] + tab_box["width"] <= 375
    shots.take(page, "narrow-05-last-tab")
    view.get_by_role("button", name="Back to the list").tap()
    page.get_by_role("button", name="Search syntax help").tap()
    check(page.locator("#search-help")).to_be_visible()
    no_small_targets(page)
    clean(problems)


def test_the_project_switcher_menu_is_44px_at_375px(
    server: ServerThread, phone: Any, shots: Shots, problems: PageProblems
) -> None:
    """The switcher's menu (a project a line with its unread count) is tapped with a finger
    too: each project in it is a 44 px target."""
    import httpx

    check = expect()
    for project in ("team-a", "team-b"):
        made = httpx.post(server.base_url + "/api/v2/projects", json={"id": project}, timeout=10)
        assert made.status_code == 201, made.text
    page = watch(phone.new_page(), problems)
    page.goto(server.base_url + "/")
    page.locator("#projects-toggle").tap()
    menu = page.locator("#projects-menu")
    check(menu.get_by_role("link")).to_have_count(3)
    no_small_targets(page, "project switcher open")
    assert page.evaluate(OVERFLOW) <= 0
    shots.take(page, "narrow-06-switcher")
    clean(problems)


class AdminWalk:
    """Visits admin pages at 375 px, noting what scrolls sideways or is too small to tap."""

    def __init__(self, page: Any, shots: Shots) -> None:
        self.page = page
        self.shots = shots
        self.wrong: list[str] = []
        self.seen: list[str] = []

    def here(self, name: str) -> None:
        page = self.page
        overflow = page.evaluate(OVERFLOW)
        if overflow > 0:
            self.wrong.append(f"{name} scrolls sideways by {overflow} px")
        self.wrong.extend(f"{name}: {box} scrolls sideways" for box in page.evaluate(SIDEWAYS))
        small: list[str] = page.evaluate(SMALL_TARGETS, TARGET)
        self.wrong.extend(f"{name}: {target}" for target in small)
        self.shots.take(page, f"narrow-admin-{len(self.seen):02d}-{name}", full_page=True)
        self.seen.append(name)

    def visit(self, url: str, name: str, status: int = 200) -> None:
        response = self.page.goto(url)
        assert response is not None and response.status == status, (url, response.status)
        self.here(name)


def test_every_admin_page_fits_375px(
    server: ServerThread, phone: Any, shots: Shots, problems: PageProblems
) -> None:
    """Every template under web/admin/templates, filled with one of each thing."""
    check = expect()
    page = watch(phone.new_page(), problems)
    walk = AdminWalk(page, shots)
    base = server.base_url
    walk.visit(base + "/admin/projects", "projects")
    form = page.locator("form", has=page.get_by_role("button", name="Create project"))
    form.get_by_label("Project ID").fill("acme-with-a-rather-long-project-identifier")
    form.get_by_label("Display name").fill("Acme Incorporated International Holdings")
    form.get_by_role("button", name="Create project").click()
    project = base + "/admin/projects/acme-with-a-rather-long-project-identifier"
    check(page).to_have_url(project + "?done=project-created")
    walk.here("project")
    walk.visit(project + "/credentials", "credentials")
    page.get_by_label("Username").fill("app-mailer-with-a-long-name")
    page.get_by_label("May send as").fill("example.com")
    page.get_by_role("button", name="Create SMTP credential").click()
    check(page.get_by_role("link", name="Done")).to_be_visible()
    walk.here("secret")
    walk.visit(project + "/api-keys", "api-keys")
    page.get_by_label("Name", exact=True).fill("ci-tests")
    page.get_by_role("button", name="Create API key").click()
    check(page.get_by_role("link", name="Done")).to_be_visible()
    walk.visit(project + "/domains", "domains")
    page.get_by_label("Domain", exact=True).fill("mail.a-rather-long-domain-name.example.test")
    page.get_by_role("button", name="Add domain").click()
    check(page.get_by_role("button", name="Check DNS now")).to_be_visible()
    walk.here("domain")
    walk.visit(project + "/webhooks", "webhooks")
    page.get_by_label("URL").fill("https://hooks.example.test/a/rather/long/path/for/the/hook")
    page.get_by_role("button", name="Add webhook").click()
    check(page.get_by_role("link", name="Done")).to_be_visible()
    walk.here("webhook-secret")
    page.goto(project + "/webhooks")
    page.get_by_role(
        "link", name="https://hooks.example.test/a/rather/long/path/for/the/hook"
    ).click()
    check(page.get_by_role("heading", name="Latest requests")).to_be_visible()
    walk.here("webhook")
    for name in ("suppressions", "templates", "delivery", "reputation"):
        walk.visit(f"{project}/{name}", name)
    walk.visit(base + "/admin/capture-routes", "capture-routes")
    walk.visit(base + "/admin/projects/no-such-project", "message", status=404)
    walk.visit(base + "/confirm-address?token=not-a-token", "confirm-address", status=400)
    walk.visit(base + "/login", "login")
    walk.visit(base + "/logout", "logout")
    assert not walk.wrong, "\n".join(walk.wrong)
    assert len(walk.seen) == 19
    assert problems.errors == [], problems.errors  # (the 404 and 400 pages log their status)


def test_a_delivery_message_page_fits_375px(
    server: ServerThread, phone: Any, shots: Shots, problems: PageProblems
) -> None:
    """templates/delivery_message.html with a recipient, a long error and an attempt whose
    reply, servers and cipher are long lines (the walk above sees no message of the queue)."""
    check = expect()
    store = server.app.store
    assert store is not None
    recipient = "someone.with.a.rather.long.address@mail.a-long-domain-name.example.test"
    message = make_message(FakeClock(), subject="Order shipped", to=(recipient,), status="queued")
    message = dataclasses.replace(message, deliveries=deliveries_for(message.envelope))
    server.call(store.add(message))
    queue = store.queue
    now = datetime.now(UTC)
    (entry,) = queue.claim("narrow-test", now, timedelta(minutes=1), 10)
    reply = (
        "451-4.7.1 Greylisted: please try again later, this server keeps a very long line "
        "to explain itself\n451 4.7.1 "
        "see https://postmaster.a-long-domain-name.example.test/greylisting/why-and-how-long"
    )
    attempt = Attempt(
        started=now,
        duration=1.25,
        code=451,
        enhanced="4.7.1",
        reply=reply,
        mx_host="mx1.mail.a-long-domain-name.example.test",
        ip="2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff",
        port=25,
        local_address="2001:db8:1111:2222:3333:4444:5555:6666",
        tls_version="TLSv1.3",
        tls_cipher="TLS_CHACHA20_POLY1305_SHA256",
        earlier=("mx0.mail.a-long-domain-name.example.test[192.0.2.1]: 421 4.4.2 timed out",),
        tls_policy="mta-sts enforce: mx pattern *.mail.a-long-domain-name.example.test",
    )
    assert queue.defer(
        entry.id, "narrow-test", now + timedelta(minutes=5), reply, now=now, attempt=attempt
    )
    page = watch(phone.new_page(), problems)
    response = page.goto(f"{server.base_url}/admin/projects/default/delivery/messages/{message.id}")
    assert response is not None and response.status == 200
    check(page.get_by_role("heading", name="Order shipped")).to_be_visible()
    check(page.locator("table")).to_contain_text("Greylisted")
    shots.take(page, "narrow-admin-delivery-message", full_page=True)
    assert page.evaluate(OVERFLOW) <= 0
    assert page.evaluate(SIDEWAYS) == []
    no_small_targets(page)
    clean(problems)
