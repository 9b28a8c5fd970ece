"""Key sessions: signing in at /login with an API key (read scope) opens the inbox of the
key's project and nothing else, with CSRF like an admin session; revoking the key ends them.
Projects named in the path (`/p/<project>/...`): any existing one for an admin, the key's own
only for a key."""

from __future__ import annotations

import httpx

from postroom.core.clock import FakeClock
from postroom.platform.factory import open_platform
from tests.integration.auth.conftest import Browser, ServerFactory, create_key, form_token

MESSAGE = {
    "From": {"Email": "app@example.com"},
    "To": [{"Email": "someone@example.com"}],
    "Subject": "for team-a",
    "Text": "hi",
}


def key_login(browser: Browser, token: str) -> httpx.Response:
    csrf = form_token(browser.page("/login").text)
    return browser.client.post("/login", data={"api_key": token, "csrf_token": csrf})


def test_key_session_opens_its_project_only_and_ends_when_the_key_is_revoked(
    start_server: ServerFactory, clock: FakeClock
) -> None:
    server = start_server(clock=clock)
    cfg = server.app.config
    reader = create_key(cfg, "team-a", "read", "send", name="reader")
    create_key(cfg, "team-b", "read", name="other")
    with httpx.Client(base_url=server.base_url, timeout=30) as api:
        sent = api.post(
            "/api/v1/send", json=MESSAGE, headers={"Authorization": f"Bearer {reader.token}"}
        )
        assert sent.status_code == 200, sent.text
    browser = Browser(server.base_url)
    try:
        wrong = key_login(browser, reader.token[:-3] + "xyz")
        assert wrong.status_code == 401 and "Invalid API key" in wrong.text
        signed_in = key_login(browser, reader.token)
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/p/team-a/"
        shell = browser.page("/p/team-a/")
        assert shell.status_code == 200
        assert 'data-base="/p/team-a"' in shell.text and "Signed in with key" in shell.text
        # `/` is its project's inbox too (the page then names the project in its URLs).
        assert 'data-project="team-a"' in browser.page("/").text
        listed = browser.client.get("/api/v1/messages").json()
        assert [m["Subject"] for m in listed["messages"]] == ["for team-a"]
        assert browser.client.get("/p/team-b/api/v1/messages").status_code == 403
        assert browser.client.get("/p/default/").status_code == 403
        assert browser.page("/admin/projects").status_code == 403
        assert browser.client.get("/api/v2/projects").status_code == 403  # no manage scope
        projects = browser.client.get("/ui/projects").json()["Projects"]
        assert [p["ID"] for p in projects] == ["team-a"]
        # Changes by cookie carry the CSRF token, as an admin session's do.
        body = {"Read": True}
        assert browser.client.put("/api/v1/messages", json=body).status_code == 403
        assert browser.api("PUT", "/api/v1/messages", json=body).status_code == 200

        service = open_platform(cfg)
        try:
            service.delete_api_key("team-a", reader.key.id)
        finally:
            service.close()
        # The very next request: the key is kept only while the change counter stays.
        gone = browser.client.get("/api/v1/messages")
        assert gone.status_code == 401
        assert browser.page("/p/team-a/").status_code == 303  # to /login
    finally:
        browser.close()


def test_admin_names_any_existing_project_in_the_path(
    start_server: ServerFactory,
) -> None:
    server = start_server()
    create_key(server.app.config, "team-a", "read")
    browser = Browser(server.base_url)
    try:
        assert browser.page("/p/team-a/").status_code == 303  # log in first
        assert browser.login().status_code == 303
        page = browser.page("/p/team-a/message/01ABC")
        assert page.status_code == 200 and 'data-base="/p/team-a"' in page.text
        assert browser.client.get("/p/team-a/api/v1/messages").json()["total"] == 0
        missing = browser.client.get("/p/nope/api/v1/messages")
        assert missing.status_code == 404 and missing.json()["Field"] == "project"
        # /p/<project> leads to the inbox only, not to the admin pages or /api/v2.
        assert browser.client.get("/p/team-a/api/v2/projects").status_code == 404
        assert browser.client.get("/p/team-a/admin/projects").status_code == 404
        projects = browser.client.get("/ui/projects").json()["Projects"]
        assert {p["ID"]: p["URL"] for p in projects} == {
            "default": "/",
            "team-a": "/p/team-a/",
        }
    finally:
        browser.close()
