"""A project's Templates tab in the admin pages, through its forms as a browser without
JavaScript posts them: save (a second save adds a version), preview with sample data (the HTML
in a sandboxed frame, escaped into its srcdoc), errors naming the template's part or the
missing variable; nothing is sent; CSRF required; one project's page never shows another's."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from tests.harness import ServerThread
from tests.integration.auth.conftest import Browser

BASE = "/admin/projects/acme/templates"


def text(response: httpx.Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


@pytest.fixture
def admin(browser: Browser) -> Browser:
    assert browser.login().status_code == 303
    for project in ("acme", "other"):
        made = browser.submit(
            "/admin/projects",
            {"id": project, "name": project, "mode": "live", "daily_quota": "", "rate_limit": ""},
        )
        assert made.status_code == 303
    return browser


def test_the_templates_tab(admin: Browser, server: ServerThread) -> None:
    form = {
        "name": "welcome",
        "subject": "Hi {{name}}",
        "text": "Dear {{name}},\nwelcome.",
        "html": "<p>Hi {{name}}</p><script>alert(1)</script>",
    }
    saved = admin.submit(BASE, form)
    assert saved.status_code == 303 and "done=created" in saved.headers["location"]
    again = admin.submit(BASE, {**form, "subject": "Hello {{name}}"})
    assert "done=updated" in again.headers["location"]
    page = text(admin.page(BASE))
    assert "welcome 2 Hello {{name}}" in page

    shown = admin.submit(BASE + "/preview", {"name": "welcome", "data": '{"name": "<Ann>"}'}, BASE)
    assert shown.status_code == 200
    assert '<span id="preview-subject">Hello &lt;Ann&gt;</span>' in shown.text
    frame = re.search(
        r'<iframe id="preview-html" title="HTML part" sandbox srcdoc="([^"]*)"', shown.text
    )
    assert frame is not None  # sandboxed: the template's script never runs
    assert html.unescape(frame.group(1)) == "<p>Hi &lt;Ann&gt;</p><script>alert(1)</script>"

    missing = admin.submit(BASE + "/preview", {"name": "welcome", "data": "{}"}, BASE)
    assert missing.status_code == 400
    assert "the variable 'name' is missing from the data" in text(missing)
    not_json = admin.submit(BASE + "/preview", {"name": "welcome", "data": "{"}, BASE)
    assert not_json.status_code == 400 and "not JSON" in text(not_json)
    broken = admin.submit(BASE, {**form, "html": "{{#if x}}never closed"})
    assert broken.status_code == 400 and "html: {{#if}} is not closed" in text(broken).lower()

    assert "welcome" not in text(admin.page("/admin/projects/other/templates"))
    token_less = admin.client.post(BASE, data=form)
    assert token_less.status_code == 403
    store = server.app.store
    assert store is not None and list(store.list("acme", None, 0, 10).messages) == []
