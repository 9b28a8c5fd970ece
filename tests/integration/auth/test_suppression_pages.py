"""The suppression list's admin page through its forms, as a browser without JavaScript posts
them: list and search, add (errors on the page), import CSV (all or nothing), export, remove;
and the page of one project never shows another's entries."""

from __future__ import annotations

import html
import re

import httpx
import pytest

from tests.integration.auth.conftest import Browser

BASE = "/admin/projects/acme/suppressions"


@pytest.fixture
def admin(browser: Browser) -> Browser:
    assert browser.login().status_code == 303
    for project in ("acme", "other"):
        made = browser.submit(
            "/admin/projects",
            {
                "id": project,
                "name": project,
                "mode": "capture",
                "daily_quota": "",
                "rate_limit": "",
            },
        )
        assert made.status_code == 303
    return browser


def text(response: httpx.Response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def test_list_add_import_export_remove(admin: Browser) -> None:
    assert "No suppressed addresses." in text(admin.page(BASE))
    added = admin.submit(BASE, {"address": "Gone@Example.net", "reason": "bounce", "detail": "x"})
    assert (added.status_code, added.headers["location"]) == (303, BASE + "?done=suppressed")
    page = text(admin.page(added.headers["location"]))
    assert "Address added to the suppression list" in page
    assert "Gone@Example.net bounce" in page
    refused = admin.submit(BASE, {"address": "nobody", "reason": "manual", "detail": ""})
    assert refused.status_code == 400 and "must be a mail address" in text(refused)
    bad = admin.submit(
        BASE + "/import", {"csv": "address\nok@example.org\nbroken\n", "reason": "manual"}, BASE
    )
    assert bad.status_code == 400 and "Line 3:" in text(bad)
    assert "ok@example.org" not in text(admin.page(BASE))  # all or nothing
    imported = admin.submit(
        BASE + "/import",
        {
            "csv": "email,reason\nann@example.org,unsubscribe\nbob@example.org,\n",
            "reason": "complaint",
        },
        BASE,
    )
    assert imported.headers["location"] == BASE + "?done=imported"
    listing = text(admin.page(BASE))
    assert "ann@example.org unsubscribe" in listing and "bob@example.org complaint" in listing
    found = text(admin.page(BASE + "?q=EXAMPLE.ORG"))
    assert "ann@example.org" in found and "Gone@Example.net" not in found
    exported = admin.page(BASE + "/export.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text.splitlines()[0] == "address,reason,created,expires,detail"
    assert len(exported.text.splitlines()) == 4
    removed = admin.submit(BASE + "/delete", {"address": "gone@example.net"}, BASE)
    assert removed.headers["location"] == BASE + "?done=unsuppressed"
    assert "Gone@Example.net" not in text(admin.page(BASE))
    assert "No suppressed addresses." in text(admin.page("/admin/projects/other/suppressions"))
    assert admin.page("/admin/projects/nope/suppressions").status_code == 404


def test_forms_need_the_csrf_token(admin: Browser) -> None:
    response = admin.client.post(BASE, data={"address": "x@example.org", "reason": "manual"})
    assert response.status_code == 403
    assert "x@example.org" not in text(admin.page(BASE))
