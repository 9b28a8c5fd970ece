"""Issue 9, item 1 on a real server with real clients: foreign Host headers (DNS rebinding) get
421 on every route, state-changing API requests that are not JSON get 415, open mode may not
hand out credentials or make projects live, and no listener opens beyond loopback without an
admin user. (The same attacks from a real browser page: tests/e2e/test_cross_site.py.)"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from postroom.app import Application
from postroom.config import HostPort
from postroom.core.clock import FakeClock
from postroom.core.errors import ConfigError
from postroom.platform.factory import open_platform
from tests.harness import ServerThread, make_config
from tests.integration.auth.conftest import Browser, ServerFactory, create_key

ROUTES = [
    ("GET", "/"),
    ("GET", "/message/x"),
    ("GET", "/api/v1/messages"),
    ("GET", "/api/v1/info"),
    ("GET", "/api/v1/events"),
    ("GET", "/api/v2/projects"),
    ("POST", "/api/v2/projects"),
    ("DELETE", "/api/v1/messages"),
    ("GET", "/view/x.html"),
    ("GET", "/ui/config"),
    ("GET", "/admin/projects"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/livez"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/favicon.ico"),
    ("GET", "/no/such/route"),
]


def message_count(server: ServerThread) -> int:
    response = httpx.get(server.base_url + "/api/v1/messages", timeout=30)
    total: int = response.json()["total"]
    return total


def projects(server: ServerThread) -> list[str]:
    listed = httpx.get(server.base_url + "/api/v2/projects", timeout=30).json()
    return [p["id"] for p in listed["projects"]]


@pytest.mark.parametrize("host", ["evil.test", "evil.test:8025", "localhost.evil.test", "10.0.0.1"])
def test_a_foreign_host_gets_421_on_every_route(start_server: ServerFactory, host: str) -> None:
    server = start_server(admin=False)
    with httpx.Client(base_url=server.base_url, timeout=30, headers={"Host": host}) as client:
        for method, path in ROUTES:
            body: dict[str, Any] = {"json": {"id": "rebound"}} if method == "POST" else {}
            response = client.request(method, path, **body)
            assert response.status_code == 421, (method, path, response.text)
            assert response.json()["Field"] == "Host"
            assert "--allowed-hosts" in response.json()["Error"]
    assert projects(server) == ["default"]


def test_loopback_names_are_answered(start_server: ServerFactory) -> None:
    server = start_server(admin=False)
    port = server.app.http_port
    for host in ("localhost", f"localhost:{port}", "postroom.localhost", "127.0.0.1", "[::1]:1"):
        response = httpx.get(server.base_url + "/api/v1/messages", headers={"Host": host})
        assert response.status_code == 200, host


def test_configured_names_are_answered(start_server: ServerFactory) -> None:
    server = start_server(
        admin=False,
        public_url="https://mail.example.org/",
        allowed_hosts=("inbox.test", "*.preview.test"),
    )
    url = server.base_url + "/api/v1/messages"
    for host in ("mail.example.org", "inbox.test:8025", "pr-7.preview.test"):
        assert httpx.get(url, headers={"Host": host}).status_code == 200, host
    for host in ("example.org", "preview.test", "evil.test"):
        assert httpx.get(url, headers={"Host": host}).status_code == 421, host


def test_a_missing_host_is_400(start_server: ServerFactory) -> None:
    server = start_server(admin=False)
    with socket.create_connection(("127.0.0.1", server.app.http_port), timeout=30) as sock:
        sock.sendall(b"GET /api/v1/messages HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"Host header is missing" in answer


MESSAGE = {"From": {"Email": "a@b.example"}, "To": [{"Email": "c@d.example"}], "Subject": "a"}
NOT_JSON = [
    {"content": b'{"id": "evil"}', "headers": {"Content-Type": "text/plain"}},
    {"content": b'{"id": "evil"}', "headers": {"Content-Type": "text/plain;charset=UTF-8"}},
    {"content": b'{"id": "evil"}'},  # no content type at all
    {"data": {"id": "evil"}},  # urlencoded
    {"files": {"id": (None, "evil")}},  # multipart
]


@pytest.mark.parametrize(
    "body", NOT_JSON, ids=["text", "text-utf8", "untyped", "form", "multipart"]
)
def test_state_changing_requests_must_be_json(start_server: ServerFactory, body: Any) -> None:
    server = start_server(admin=False)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        sent = client.post("/api/v1/send", json=MESSAGE)
        assert sent.status_code == 200
        for method, path in [
            ("POST", "/api/v2/projects"),
            ("POST", "/api/v2/projects/default/smtp-credentials"),
            ("POST", "/api/v2/projects/default/domains/x.example/verify"),
            ("PATCH", "/api/v2/projects/default"),
            ("POST", "/api/v1/send"),
            ("PUT", "/api/v1/messages"),
            ("PUT", "/api/v1/tags"),
            ("PUT", "/api/v1/tags/x"),
            ("DELETE", "/api/v1/messages"),
            ("DELETE", "/api/v1/search?query=a"),
            ("POST", "/ui/config"),  # not an API route: still refused before routing
        ]:
            response = client.request(method, path, **body)
            assert response.status_code == 415, (method, path, response.text)
            assert response.json()["Field"] == "Content-Type"
            assert "application/json" in response.json()["Error"]
    assert projects(server) == ["default"]
    assert message_count(server) == 1


def test_json_and_bare_deletes_still_work(start_server: ServerFactory) -> None:
    server = start_server(admin=False)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        for _ in range(2):
            sent = client.post("/api/v1/send", json=MESSAGE)
            assert sent.status_code == 200
        assert client.put("/api/v1/messages", json={"Read": True}).status_code == 200
        assert client.request("DELETE", "/api/v1/search", params={"query": "a"}).status_code == 200
        assert client.delete("/api/v1/messages").status_code == 200  # no body: Mailpit's way
        assert message_count(server) == 0


def test_admin_forms_still_post_form_encodings(browser: Browser) -> None:
    browser.login()
    created = browser.submit("/admin/projects", {"id": "acme", "name": "Acme", "mode": "live"})
    assert created.status_code == 303
    issued = browser.submit("/admin/projects/acme/credentials", {"username": "app"})
    assert issued.status_code == 201 and "app" in issued.text
    assert browser.client.post("/logout", data={"csrf_token": browser.csrf}).status_code == 303


# -- open mode --------------------------------------------------------------------------------


def test_open_mode_manages_capture_projects_only(start_server: ServerFactory) -> None:
    server = start_server(admin=False)
    service = open_platform(server.app.config)
    try:
        service.create_project("prod", mode="live")
    finally:
        service.close()
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        assert client.post("/api/v2/projects", json={"id": "qa"}).status_code == 201
        assert client.patch("/api/v2/projects/qa", json={"name": "QA"}).status_code == 200
        refused = [
            client.post("/api/v2/projects", json={"id": "evil", "mode": "live"}),
            client.patch("/api/v2/projects/qa", json={"mode": "live"}),
            client.patch("/api/v2/projects/prod", json={"daily_quota": 1}),
            client.delete("/api/v2/projects/prod"),
        ]
        for response in refused:
            assert response.status_code == 403, response.text
            error = response.json()
            assert error["Field"] == "Authorization"
            assert "open mode" in error["Error"] and "postroom admin create" in error["Error"]
            assert "live project" in error["Error"]
        assert client.delete("/api/v2/projects/qa").status_code == 200
        base = "/api/v2/projects/default"
        for method, path, body in [
            ("POST", "/smtp-credentials", {"username": "u"}),
            ("DELETE", "/smtp-credentials/u", None),
            ("POST", "/ip-credentials", {"network": "203.0.113.0/24"}),
            ("DELETE", "/ip-credentials/203.0.113.0/24", None),
            ("POST", "/api-keys", {"name": "k", "scopes": ["manage"]}),
            ("DELETE", "/api-keys/k", None),
            ("POST", "/domains", {"domain": "example.com"}),
            ("POST", "/domains/example.com/verify", {}),
            ("POST", "/domains/example.com/rotate", {}),
            ("POST", "/domains/example.com/activate", {"selector": "s"}),
            ("DELETE", "/domains/example.com", None),
            ("POST", "/verified-addresses", {"address": "ceo@bank.example"}),
            ("DELETE", "/verified-addresses/ceo@bank.example", None),
        ]:
            kwargs: dict[str, Any] = {"json": body} if body is not None else {}
            response = client.request(method, base + path, **kwargs)
            assert response.status_code == 403, (method, path, response.text)
            assert "postroom apikey create" in response.json()["Error"]
        # Reading is fine, and the testing API is open.
        assert client.get(base + "/smtp-credentials").json()["credentials"] == []
        assert client.get(base + "/verified-addresses").json()["addresses"] == []
        assert client.get("/api/v1/messages").status_code == 200
    assert projects(server) == ["default", "prod"]


def test_a_manage_key_may_in_open_mode(start_server: ServerFactory) -> None:
    server = start_server(admin=False)
    key = create_key(server.app.config, "default", "manage")
    auth = {"Authorization": f"Bearer {key.token}"}
    with httpx.Client(base_url=server.base_url, timeout=30, headers=auth) as client:
        created = client.post("/api/v2/projects/default/smtp-credentials", json={"username": "u"})
        assert created.status_code == 201, created.text
        address = {"address": "ops@example.net"}
        added = client.post("/api/v2/projects/default/verified-addresses", json=address)
        assert added.status_code == 201


# -- listeners beyond loopback ----------------------------------------------------------------


@pytest.mark.parametrize("option", ["smtp", "submission", "submissions"])
def test_smtp_doors_beyond_loopback_need_an_admin(tmp_path: Path, option: str) -> None:
    # 192.0.2.1 (TEST-NET-1) cannot be bound here: if the check did not run first, binding
    # would fail with another message (and nothing would listen on a real interface anyway).
    config = make_config(tmp_path / "data", **{option: HostPort("192.0.2.1", 0)})
    app = Application(config, FakeClock())
    with pytest.raises(ConfigError) as info:
        asyncio.run(app.start())
    message = str(info.value)
    assert f"--{option} 192.0.2.1:0 is not a loopback address" in message
    assert "postroom admin create NAME" in message
    assert app.listening() == () and not app.ready()
    assert app.store is not None and app.store._closed  # type: ignore[attr-defined]
