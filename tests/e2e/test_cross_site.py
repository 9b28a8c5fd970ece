"""A web page the developer happens to visit must not be able to change an open instance.

Chromium loads an attacker's page from another loopback origin (127.0.0.2, so another site
too) that auto-posts forms (text/plain with a JSON-looking body, urlencoded, multipart) and
sends `fetch(..., {mode: "no-cors"})` requests (text, form, multipart and untyped bodies) at
/api/v1 and /api/v2, plus a DELETE that needs a CORS preflight. The browser reports each
response it got, so the test knows the requests reached the server (415), and afterwards reads
the server's state through the API: nothing changed.

Then DNS rebinding: Chromium resolves a foreign name to the server's loopback address
(--host-resolver-rules), so a page of that name is same-origin with the API and may send JSON.
Every request it makes is refused (421) because of the name in its Host header.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import CHROMIUM_ARGS, PageProblems, watch
from tests.e2e.mail import send, simple
from tests.harness import ServerThread
from tests.services import require_executable

pytestmark = pytest.mark.chromium

ATTACKER_HOST = "127.0.0.2"
EVIL_ID = "evil"


def attack_page(target: str) -> str:
    """Forms that submit themselves into hidden frames, and no-cors fetches; the title becomes
    "done" when every fetch has settled."""
    live = json.dumps({"id": EVIL_ID + "1", "mode": "live", "x": ""})[:-2]  # ends in "x": "
    forms = [
        # text/plain: the body is `name=value`, here {"id": ..., "mode": "live", "x": "="}
        ("text/plain", "/api/v2/projects", live, '"}'),
        ("text/plain", "/api/v1/send", '{"From":"a@b.example","To":["c@d.example"],"x":"', '"}'),
        ("application/x-www-form-urlencoded", "/api/v2/projects", "id", EVIL_ID + "2"),
        (
            "application/x-www-form-urlencoded",
            "/api/v2/projects/default/smtp-credentials",
            "u",
            "x",
        ),
        ("multipart/form-data", "/api/v2/projects", "id", EVIL_ID + "3"),
        ("multipart/form-data", "/api/v1/send", "Subject", "pwned"),
    ]
    html_forms = []
    for i, (enctype, path, name, value) in enumerate(forms):
        html_forms.append(
            f'<iframe name="f{i}"></iframe>'
            f'<form id="form{i}" method="post" enctype="{enctype}" action="{target}{path}" '
            f"target=\"f{i}\"><input name='{name}' value='{value}'></form>"
        )
    fetches = {
        "/api/v2/projects": {"id": EVIL_ID + "4", "mode": "live"},
        "/api/v2/projects/default/smtp-credentials": {"username": "attacker"},
        "/api/v2/projects/default/ip-credentials": {"network": "203.0.113.0/24"},
        "/api/v2/projects/default/verified-addresses": {"address": "ceo@bank.example"},
        "/api/v2/projects/default/api-keys": {"name": "stolen", "scopes": ["manage"]},
        "/api/v1/send": {"From": "a@b.example", "To": ["c@d.example"], "Subject": "pwned"},
    }
    script = [f"const T = {json.dumps(target)};", "const jobs = [];"]
    script.append(
        "function go(path, body) {"
        " jobs.push(fetch(T + path, {method: 'POST', mode: 'no-cors', body})"
        ".then(() => 'sent', (e) => 'error ' + e)); }"
    )
    for path, body in fetches.items():
        text = json.dumps(json.dumps(body))
        script.append(f"go({json.dumps(path)}, {text});")  # text/plain;charset=UTF-8
        script.append(f"go({json.dumps(path)}, new Blob([{text}]));")  # no Content-Type at all
        script.append(  # urlencoded
            f"go({json.dumps(path)}, new URLSearchParams({json.dumps(body)}));"
        )
    form_data = (
        "const fd = new FormData(); fd.append('Subject', 'pwned'); fd.append('id', 'evil5');"
    )
    script.append(form_data)
    script.append("go('/api/v1/send', fd); go('/api/v2/projects', fd);")
    # Needs a preflight, which the server never answers with CORS headers: never sent.
    script.append(
        "jobs.push(fetch(T + '/api/v1/messages', {method: 'DELETE'}).then(() => 'sent', () => 'blocked'));"
    )
    script.append(
        "for (const form of document.forms) form.submit();"
        "Promise.all(jobs).then((r) => { window.results = r; document.title = 'done'; });"
    )
    return (
        "<!doctype html><html><head><title>cute cats</title></head><body>"
        + "".join(html_forms)
        + "<script>"
        + "\n".join(script)
        + "</script></body></html>"
    )


class AttackerSite:
    """A plain HTTP server on 127.0.0.2 serving the attack page."""

    def __init__(self, page: str) -> None:
        body = page.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((ATTACKER_HOST, 0), Handler)
        self.url = f"http://{ATTACKER_HOST}:{self.server.server_address[1]}/cats.html"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def attacker(server: ServerThread) -> Iterator[AttackerSite]:
    try:
        site = AttackerSite(attack_page(server.base_url))
    except OSError as exc:  # 127.0.0.2 is loopback on Linux; elsewhere it may not be bound
        pytest.skip(f"service unavailable: cannot listen on {ATTACKER_HOST}: {exc}")
    try:
        yield site
    finally:
        site.close()


def state(base_url: str) -> dict[str, Any]:
    """Everything the attack tried to change, read through the API."""
    with httpx.Client(base_url=base_url, timeout=30) as api:
        project = "/api/v2/projects/default"
        return {
            "projects": [p["id"] for p in api.get("/api/v2/projects").json()["projects"]],
            "smtp": api.get(project + "/smtp-credentials").json()["credentials"],
            "ip": api.get(project + "/ip-credentials").json()["credentials"],
            "keys": api.get(project + "/api-keys").json()["api_keys"],
            "addresses": api.get(project + "/verified-addresses").json()["addresses"],
            "subjects": [m["Subject"] for m in api.get("/api/v1/messages").json()["messages"]],
        }


def test_a_cross_site_page_changes_nothing(
    server: ServerThread, attacker: AttackerSite, context: Any, problems: PageProblems
) -> None:
    send(server.smtp_port, simple("keep me"))
    before = state(server.base_url)
    assert before == {
        "projects": ["default"],
        "smtp": [],
        "ip": [],
        "keys": [],
        "addresses": [],
        "subjects": ["keep me"],
    }
    answers: list[tuple[str, str, int]] = []

    def on_response(response: Any) -> None:
        if response.url.startswith(server.base_url):
            answers.append((response.request.method, response.url, response.status))

    page = watch(context.new_page(), problems)
    page.on("response", on_response)
    page.goto(attacker.url)
    page.wait_for_function("document.title === 'done'")
    results = page.evaluate("window.results")
    assert results[-1] == "blocked"  # the DELETE's preflight failed: it was never sent
    posts = [a for a in answers if a[0] == "POST"]
    fetch_count = 6 * 3 + 2
    for _ in range(100):  # the six form frames may answer after the title; wait for them
        if len(posts) >= fetch_count + 6:
            break
        page.wait_for_timeout(100)
        posts = [a for a in answers if a[0] == "POST"]
    # Every POST reached the server and was refused for its content type.
    assert len(posts) == fetch_count + 6, answers
    assert {status for _, _, status in posts} == {415}, posts
    assert not [a for a in answers if a[0] == "DELETE"]
    assert state(server.base_url) == before


@pytest.fixture
def rebinding_browser(browser: Any) -> Iterator[Any]:
    """A second Chromium whose resolver sends rebind.test to 127.0.0.1, as a rebinding DNS
    server would after the first lookup."""
    instance = browser.browser_type.launch(
        executable_path=require_executable("chromium", "/usr/bin/chromium"),
        args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP rebind.test 127.0.0.1"],
        headless=True,
    )
    try:
        yield instance
    finally:
        instance.close()


def test_a_rebound_name_gets_nothing(server: ServerThread, rebinding_browser: Any) -> None:
    send(server.smtp_port, simple("secret"))
    before = state(server.base_url)
    context = rebinding_browser.new_context()
    try:
        page = context.new_page()
        origin = f"http://rebind.test:{server.app.http_port}"
        response = page.goto(origin + "/")
        assert response is not None and response.status == 421
        # Same origin as the API now: JSON would be allowed, and reads would be readable.
        results = page.evaluate(
            """async () => {
                const post = await fetch('/api/v2/projects', {method: 'POST',
                    headers: {'Content-Type': 'application/json'},
                    body: JSON.stringify({id: 'rebound', mode: 'capture'})});
                const list = await fetch('/api/v1/messages');
                const text = await list.text();
                const del = await fetch('/api/v1/messages', {method: 'DELETE'});
                return [post.status, list.status, text.includes('secret'), del.status];
            }"""
        )
        assert results == [421, 421, False, 421]
    finally:
        context.close()
    assert state(server.base_url) == before
