"""CSRF: every state-changing request authenticated by the session cookie, and every form post
to /login, /logout and /admin, needs the token; a missing or wrong one is a 403 (JSON for the
APIs, an HTML page for the forms) and changes nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.harness import ServerThread
from tests.integration.auth.conftest import ADMIN, PASSWORD, Browser, ServerFactory, form_token

CHANGES = [
    ("POST", "/api/v2/projects", {"id": "acme"}),
    ("DELETE", "/api/v1/messages", None),
    ("PUT", "/api/v1/messages", {"Read": True}),
    ("POST", "/api/v1/send", {"From": {"Email": "a@example.com"}, "To": [{"Email": "b@x.io"}]}),
]


@pytest.mark.parametrize(("method", "path", "body"), CHANGES)
def test_cookie_requests_without_the_header_are_refused(
    browser: Browser, method: str, path: str, body: object
) -> None:
    browser.login()
    missing = browser.client.request(method, path, json=body)
    assert missing.status_code == 403
    assert missing.json() == {
        "Error": "CSRF token missing: send the X-CSRF-Token header with the value of the "
        "postroom_csrf cookie (or the csrf_token form field)",
        "Field": "X-CSRF-Token",
    }
    wrong = browser.client.request(method, path, json=body, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    assert wrong.json()["Error"].startswith("CSRF token wrong or expired")
    right = browser.api(method, path, json=body)
    assert right.status_code in (200, 201), right.text


def test_refused_requests_change_nothing(browser: Browser) -> None:
    browser.login()
    assert browser.client.post("/api/v2/projects", json={"id": "acme"}).status_code == 403
    assert browser.client.post("/admin/projects", data={"id": "acme2"}).status_code == 403
    ids = [p["id"] for p in browser.client.get("/api/v2/projects").json()["projects"]]
    assert ids == ["default"]


def test_a_token_from_another_session_does_not_work(server: ServerThread) -> None:
    first, second = Browser(server.base_url), Browser(server.base_url)
    try:
        first.login()
        second.login()
        assert first.csrf != second.csrf
        stolen = second.csrf
        response = first.client.post(
            "/api/v2/projects", json={"id": "acme"}, headers={"X-CSRF-Token": stolen}
        )
        assert response.status_code == 403
        # Nor does a pre-login token, even with its matching cookie.
        anonymous = httpx.get(server.base_url + "/login")
        token = form_token(anonymous.text)
        first.client.cookies.set("postroom_csrf", token)
        response = first.client.post(
            "/api/v2/projects", json={"id": "acme"}, headers={"X-CSRF-Token": token}
        )
        assert response.status_code == 403
    finally:
        first.close()
        second.close()


def test_form_posts_get_an_html_error_page(browser: Browser) -> None:
    browser.login()
    response = browser.client.post("/admin/projects", data={"id": "acme", "csrf_token": "forged"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "security token of this form is wrong or expired" in response.text
    missing = browser.client.post("/admin/projects", data={"id": "acme"})
    assert missing.status_code == 403 and "is missing" in missing.text
    ok = browser.submit("/admin/projects", {"id": "acme"})
    assert (ok.status_code, ok.headers["location"]) == (
        303,
        "/admin/projects/acme?done=project-created",
    )


def test_the_login_form_needs_its_token(anonymous: httpx.Client) -> None:
    """Login CSRF: another site must not log a browser in as someone else."""
    response = anonymous.post("/login", data={"username": ADMIN, "password": PASSWORD})
    assert response.status_code == 403
    assert "postroom_session" not in response.headers.get("set-cookie", "")
    forged = anonymous.post(
        "/login",
        data={"username": ADMIN, "password": PASSWORD, "csrf_token": "abc.def"},
        headers={"Cookie": "postroom_csrf=abc.def"},  # a cookie we did not sign
    )
    assert forged.status_code == 403


def test_open_mode_apis_need_no_token_but_admin_forms_do(start_server: ServerFactory) -> None:
    server = start_server(admin=False)
    with httpx.Client(base_url=server.base_url) as client:
        assert client.post("/api/v2/projects", json={"id": "acme"}).status_code == 201
        assert client.delete("/api/v1/messages").status_code == 200
        refused = client.post("/admin/projects", data={"id": "acme2"})
        assert refused.status_code == 403
        token = form_token(client.get("/admin/projects").text)
        created = client.post("/admin/projects", data={"id": "acme2", "csrf_token": token})
        assert created.status_code == 303


def test_scripts_find_the_token_in_a_cookie_and_the_page(browser: Browser) -> None:
    browser.login()
    page = browser.page("/admin/projects")
    assert f'<meta name="csrf-token" content="{browser.csrf}">' in page.text
    # A session whose page lost the cookie gets it back on its next response.
    token = browser.csrf
    browser.client.cookies.delete("postroom_csrf")
    response = browser.client.get("/api/v1/messages")
    assert f"postroom_csrf={token}" in response.headers["set-cookie"]
