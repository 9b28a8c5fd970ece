"""API keys: `Authorization: Bearer <key>`, scoped to one project and to send, read or manage;
a bad or missing key is a 401 JSON error naming the problem, a key beyond its scope a 403."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from postroom.config import Config
from postroom.platform import IssuedApiKey
from postroom.platform.factory import open_platform
from tests.harness import ServerThread
from tests.integration.auth.conftest import Browser, ServerFactory, create_key

MESSAGE = {
    "From": {"Email": "app@example.com"},
    "To": [{"Email": "someone@example.com"}],
    "Subject": "hello from a key",
    "Text": "hi",
}


def client(server: ServerThread, key: IssuedApiKey | str) -> httpx.Client:
    token = key if isinstance(key, str) else key.token
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message: str = response.json()["Error"]
    return message


@pytest.fixture
def cfg(server: ServerThread) -> Config:
    return server.app.config


def test_missing_malformed_unknown_and_revoked_keys(server: ServerThread, cfg: Config) -> None:
    key = create_key(cfg, "default", "read")
    with httpx.Client(base_url=server.base_url) as anonymous:
        missing = anonymous.get("/api/v1/messages")
        assert error(missing, 401).startswith("authentication required")
        basic = anonymous.get("/api/v1/messages", headers={"Authorization": "Basic YTpi"})
        assert error(basic, 401).startswith("authentication required")
        empty = anonymous.get("/api/v1/messages", headers={"Authorization": "Bearer"})
        assert error(empty, 401) == "the Authorization header has no token after Bearer"
    with client(server, "garbage") as garbage:
        response = garbage.get("/api/v1/messages")
        assert error(response, 401) == (
            "malformed API key: expected prk_<key id>_<secret> after Bearer"
        )
        assert response.json()["Field"] == "Authorization"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    forged = key.token[:-4] + ("aaaa" if not key.token.endswith("aaaa") else "bbbb")
    with client(server, forged) as wrong:
        assert error(wrong.get("/api/v1/messages"), 401) == "unknown or revoked API key"
    with client(server, key) as good:
        assert good.get("/api/v1/messages").status_code == 200
        service = open_platform(cfg)
        try:
            service.delete_api_key("default", key.key.id)
        finally:
            service.close()
        assert error(good.get("/api/v1/messages"), 401) == "unknown or revoked API key"


def test_read_key_cannot_send_or_manage(server: ServerThread, cfg: Config) -> None:
    key = create_key(cfg, "default", "read")
    with client(server, key) as c:
        assert c.get("/api/v1/messages").status_code == 200
        assert c.get("/api/v1/info").status_code == 200
        assert c.delete("/api/v1/messages").status_code == 200  # the inbox's housekeeping
        assert error(c.post("/api/v1/send", json=MESSAGE), 403) == (
            "this API key lacks the send scope (it has: read)"
        )
        assert error(c.get("/api/v2/projects"), 403) == (
            "this API key lacks the manage scope (it has: read)"
        )
        assert error(c.get("/admin/projects"), 403) == (
            "API keys open /api/v1 and /api/v2 only: log in to use the web pages"
        )
        assert error(c.get("/"), 403).startswith("API keys open /api/v1")


def test_send_key_cannot_read(server: ServerThread, cfg: Config) -> None:
    key = create_key(cfg, "default", "send")
    with client(server, key) as c:
        sent = c.post("/api/v1/send", json=MESSAGE)
        assert sent.status_code == 200, sent.text
        for path in ("/api/v1/messages", f"/api/v1/message/{sent.json()['ID']}", "/api/v1/tags"):
            assert error(c.get(path), 403) == "this API key lacks the read scope (it has: send)"
        assert error(c.get(f"/view/{sent.json()['ID']}.txt"), 403).endswith("(it has: send)")
        assert error(c.get("/api/v2/projects/default"), 403).startswith(
            "this API key lacks the manage scope"
        )


def test_manage_key_manages_its_own_project_only(server: ServerThread, cfg: Config) -> None:
    a = create_key(cfg, "project-a", "manage")
    create_key(cfg, "project-b", "manage")
    with client(server, a) as c:
        listed = c.get("/api/v2/projects").json()["projects"]
        assert [p["id"] for p in listed] == ["project-a"]
        assert c.get("/api/v2/projects/project-a").json()["id"] == "project-a"
        assert c.get("/api/v2/projects/project-a/usage").status_code == 200
        created = c.post("/api/v2/projects/project-a/smtp-credentials", json={})
        assert created.status_code == 201
        assert c.get("/api/v2/openapi.json").status_code == 200
        refused_b = [
            c.get("/api/v2/projects/project-b"),
            c.get("/api/v2/projects/project-b/api-keys"),
            c.post("/api/v2/projects/project-b/smtp-credentials", json={}),
            c.post("/api/v2/projects/project-b/api-keys", json={"name": "x", "scopes": ["read"]}),
            c.delete("/api/v2/projects/project-b"),
            c.get("/api/v2/projects/default/domains"),
        ]
        for response in refused_b:
            assert error(response, 403).startswith("this API key belongs to project 'project-a'")
        assert error(c.post("/api/v2/projects", json={"id": "new"}), 403) == (
            "creating projects needs an admin login, not an API key"
        )
        assert error(c.patch("/api/v2/projects/project-a", json={"daily_quota": 0}), 403) == (
            "changing or deleting a project needs an admin login, not an API key"
        )
        assert error(c.delete("/api/v2/projects/project-a"), 403).startswith("changing or")
        # The manage key does not open the inbox either.
        assert error(c.get("/api/v1/messages"), 403).startswith("this API key lacks the read")
    service = open_platform(cfg)
    try:
        assert service.list_smtp_credentials("project-b") == []
        assert {p.id for p in service.list_projects()} == {"default", "project-a", "project-b"}
    finally:
        service.close()


def test_each_key_sees_its_own_projects_mail(server: ServerThread, cfg: Config) -> None:
    keys: dict[str, Any] = {
        "p_send": create_key(cfg, "acme", "send"),
        "p_read": create_key(cfg, "acme", "read"),
        "d_read": create_key(cfg, "default", "read"),
    }
    with client(server, keys["p_send"]) as sender:
        message_id = sender.post("/api/v1/send", json=MESSAGE).json()["ID"]
    with client(server, keys["p_read"]) as reader:
        listed = reader.get("/api/v1/messages").json()
        assert [m["ID"] for m in listed["messages"]] == [message_id]
        assert reader.get(f"/api/v1/message/{message_id}").json()["Subject"] == "hello from a key"
        assert reader.get(f"/view/{message_id}.txt").text.strip() == "hi"
        waited = reader.get("/api/v1/wait", params={"query": "subject:hello", "timeout": "5"})
        assert waited.json()["ID"] == message_id
    with client(server, keys["d_read"]) as other:
        assert other.get("/api/v1/messages").json()["total"] == 0
        assert other.get(f"/api/v1/message/{message_id}").status_code == 404
        assert other.get(f"/api/v1/message/{message_id}/raw").status_code == 404
    b = Browser(server.base_url)
    try:
        b.login()  # an admin session reads the default project's inbox
        assert b.client.get("/api/v1/messages").json()["total"] == 0
    finally:
        b.close()


def test_keys_select_their_project_in_open_mode_too(start_server: ServerFactory) -> None:
    server = start_server(admin=False)
    key = create_key(server.app.config, "acme", "send", "read")
    with client(server, key) as c:
        c.post("/api/v1/send", json=MESSAGE).raise_for_status()
        assert c.get("/api/v1/messages").json()["total"] == 1
        assert error(c.get("/api/v2/projects"), 403).startswith("this API key lacks the manage")
    with httpx.Client(base_url=server.base_url) as anonymous:
        assert anonymous.get("/api/v1/messages").json()["total"] == 0  # default's inbox
    with client(server, "prk_nonsense") as bad:
        assert bad.get("/api/v1/messages").status_code == 401


def test_info_does_not_show_a_tenant_the_server(
    server: ServerThread, cfg: Config, browser: Browser
) -> None:
    """/api/v1/info for an API key: its project's counts, never the database path or the
    server's own figures (issue 9, item 6)."""
    key = create_key(cfg, "acme", "read")
    with client(server, key) as tenant:
        info = tenant.get("/api/v1/info")
    assert info.status_code == 200
    data = info.json()
    assert data["Database"] == "" and data["DatabaseSize"] == 0
    assert str(cfg.data_dir) not in info.text and "postroom.db" not in info.text
    assert data["RuntimeStats"]["Memory"] == 0
    assert data["Messages"] == 0 and data["Version"]
    browser.login()  # the admin still sees where the data is
    admin = browser.client.get("/api/v1/info").json()
    assert admin["Database"].endswith("postroom.db") and admin["DatabaseSize"] > 0
