"""Admin logins against the real server: the form, the cookies, sessions that end (logout,
idle timeout, lifetime, deleted admin), no user enumeration, throttling, safe redirects."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from postroom.core.clock import FakeClock
from postroom.platform.factory import open_platform
from tests.harness import ServerThread
from tests.integration.auth.conftest import ADMIN, PASSWORD, Browser, ServerFactory, form_token


def attributes(response: httpx.Response, name: str) -> dict[str, str]:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            parts = [p.strip() for p in header.split(";")[1:]]
            return {p.partition("=")[0].lower(): p.partition("=")[2] for p in parts}
    raise AssertionError(f"no Set-Cookie for {name}")


def test_pages_redirect_to_login_and_apis_answer_401(anonymous: httpx.Client) -> None:
    page = anonymous.get("/admin/projects?x=1", headers={"Accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/admin/projects%3Fx%3D1"
    inbox = anonymous.get("/", headers={"Accept": "text/html"})
    assert (inbox.status_code, inbox.headers["location"]) == (303, "/login?next=/")
    for method, path in [
        ("GET", "/api/v1/messages"),
        ("DELETE", "/api/v1/messages"),
        ("POST", "/api/v1/send"),
        ("GET", "/api/v2/projects"),
        ("POST", "/api/v2/projects"),
        ("GET", "/ui/config"),
        ("GET", "/view/x.html"),
    ]:
        body: dict[str, Any] = {"json": {}} if method == "POST" else {}  # (else 415 first)
        response = anonymous.request(method, path, **body)
        assert response.status_code == 401, (method, path)
        assert response.json() == {
            "Error": "authentication required: send Authorization: Bearer <API key>, or log in "
            "at /login",
            "Field": "Authorization",
        }
        assert response.headers["www-authenticate"] == 'Bearer realm="postroom"'
    for path in ("/livez", "/readyz", "/metrics", "/favicon.ico"):
        assert anonymous.get(path).status_code == 200, path


def test_login_success_sets_cookies_and_opens_everything(browser: Browser) -> None:
    page = browser.page("/login?next=/admin/projects")
    assert page.status_code == 200
    assert 'name="next" value="/admin/projects"' in page.text
    assert page.headers["cache-control"] == "no-store"
    token = form_token(page.text)
    response = browser.client.post(
        "/login",
        data={
            "username": ADMIN,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/admin/projects",
        },
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/projects"
    session = attributes(response, "postroom_session")
    assert "httponly" in session and "secure" not in session
    assert session["samesite"].lower() == "lax" and session["path"] == "/"
    assert int(session["max-age"]) == 7 * 86400
    csrf = attributes(response, "postroom_csrf")
    assert "httponly" not in csrf and csrf["samesite"].lower() == "strict"
    # The session's token differs from the one before login.
    assert browser.csrf != token
    assert browser.page("/admin/projects").status_code == 200
    assert browser.client.get("/api/v1/messages").status_code == 200
    assert browser.client.get("/api/v2/projects").json()["projects"][0]["id"] == "default"
    # Logged in, the login page sends you on.
    again = browser.page("/login?next=/admin/projects")
    assert (again.status_code, again.headers["location"]) == (303, "/admin/projects")


def test_failures_say_the_same_for_unknown_users_and_wrong_passwords(
    browser: Browser, server: ServerThread
) -> None:
    wrong = browser.login(ADMIN, "not the password")
    unknown = browser.login("mallory", "not the password")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Invalid username or password." in response.text
        assert 'role="alert"' in response.text
        assert "postroom_session" not in response.headers.get("set-cookie", "")
    assert ADMIN in wrong.text  # the username typed stays in the field ...
    assert "not the password" not in wrong.text + unknown.text  # ... the password never
    empty = browser.submit("/login", {"username": ADMIN, "password": ""}, "/login")
    assert empty.status_code == 400 and "Enter your username and password." in empty.text
    assert browser.client.get("/api/v1/messages").status_code == 401


def test_next_never_leaves_the_site(browser: Browser) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:1"):
        browser.client.cookies.clear()
        token = form_token(browser.page("/login").text)
        response = browser.client.post(
            "/login",
            data={"username": ADMIN, "password": PASSWORD, "csrf_token": token, "next": target},
        )
        assert (response.status_code, response.headers["location"]) == (303, "/"), target


def test_logout_ends_the_session(browser: Browser, server: ServerThread) -> None:
    assert browser.login().status_code == 303
    stolen = browser.client.cookies["postroom_session"]
    assert browser.page("/logout").status_code == 200  # a confirmation form
    response = browser.submit("/logout", {}, "/logout")
    assert (response.status_code, response.headers["location"]) == (303, "/login?done=logged-out")
    cleared = attributes(response, "postroom_session")
    assert cleared["max-age"] == "0"
    assert browser.page("/login?done=logged-out").text.count("You are logged out.") == 1
    # The old cookie is worthless now, even replayed by someone who kept it.
    with httpx.Client(base_url=server.base_url, cookies={"postroom_session": stolen}) as other:
        replay = other.get("/api/v1/messages")
        assert replay.status_code == 401
        assert "(the login expired)" in replay.json()["Error"]
    assert browser.client.get("/api/v1/messages").status_code == 401


def test_logout_needs_the_csrf_token(browser: Browser) -> None:
    browser.login()
    refused = browser.client.post("/logout", data={})
    assert refused.status_code == 403
    assert browser.client.get("/api/v1/messages").status_code == 200


def test_sessions_expire_when_idle_and_at_their_lifetime(
    start_server: ServerFactory, clock: FakeClock
) -> None:
    server = start_server(clock=clock, session_idle_timeout=600.0, session_lifetime=3600.0)
    b = Browser(server.base_url)
    try:
        b.login()
        clock.advance(599)
        assert b.client.get("/api/v1/messages").status_code == 200  # restarts the idle time
        clock.advance(599)
        assert b.client.get("/api/v1/messages").status_code == 200
        clock.advance(601)
        assert b.client.get("/api/v1/messages").status_code == 401  # idle too long

        b.login()
        for _ in range(6):  # active all along, yet the lifetime ends it
            clock.advance(590)
            assert b.client.get("/api/v1/messages").status_code == 200
        clock.advance(60)
        expired = b.client.get("/api/v1/messages")
        assert expired.status_code == 401
        page = b.page("/admin/projects")
        assert (page.status_code, page.headers["location"]) == (303, "/login?next=/admin/projects")
        # A form posted after the login expired leads back to its project's page.
        posted = b.client.post(
            "/admin/projects/default/api-keys",
            data={"name": "x", "scopes": "read", "csrf_token": "stale"},
            headers={"Accept": "text/html"},
        )
        assert (posted.status_code, posted.headers["location"]) == (
            303,
            "/login?next=/admin/projects/default",
        )
    finally:
        b.close()


def test_deleting_the_admin_ends_its_sessions(
    start_server: ServerFactory, clock: FakeClock
) -> None:
    server = start_server(clock=clock)
    b = Browser(server.base_url)
    try:
        b.login()
        service = open_platform(server.app.config)
        try:
            service.create_admin("bob", "another good password")
            service.delete_admin(ADMIN)
        finally:
            service.close()
        clock.advance(5)  # past the admin list's cache
        assert b.client.get("/api/v1/messages").status_code == 401
        assert b.login().status_code == 401
    finally:
        b.close()


def test_repeated_failures_are_throttled(start_server: ServerFactory) -> None:
    server = start_server(login_max_failures=3)
    b = Browser(server.base_url)
    try:
        for _ in range(3):
            assert b.login(ADMIN, "wrong password").status_code == 401
        blocked = b.login()  # even the right password waits now
        assert blocked.status_code == 429
        assert "Too many failed logins" in blocked.text
        assert b.client.get("/api/v1/messages").status_code == 401
    finally:
        b.close()


@pytest.mark.parametrize(
    ("overrides", "headers", "secure"),
    [
        ({}, {}, False),
        ({"secure_cookies": True}, {}, True),
        # A TLS proxy on 127.0.0.1, believed only when named in --trusted-proxies.
        ({"trusted_proxies": ("127.0.0.1",)}, {"X-Forwarded-Proto": "https"}, True),
        ({}, {"X-Forwarded-Proto": "https"}, False),
    ],
)
def test_cookies_are_secure_over_tls(
    start_server: ServerFactory, overrides: dict[str, object], headers: dict[str, str], secure: bool
) -> None:
    server = start_server(**overrides)
    with httpx.Client(base_url=server.base_url, headers=headers) as client:
        page = client.get("/login")
        assert ("secure" in attributes(page, "postroom_csrf")) is secure
        token = form_token(page.text)
        # Sent by hand: a client keeps Secure cookies for https only.
        response = client.post(
            "/login",
            data={"username": ADMIN, "password": PASSWORD, "csrf_token": token},
            headers={"Cookie": f"postroom_csrf={token}"},
        )
    assert response.status_code == 303
    assert ("secure" in attributes(response, "postroom_session")) is secure
    assert ("secure" in attributes(response, "postroom_csrf")) is secure
