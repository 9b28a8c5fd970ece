"""The UI's own routes: the shell page, its configuration and the hashed static files."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from starlette.applications import Starlette

from postroom import __version__
from postroom.api.context import ApiContext
from postroom.config import Config, HostPort
from postroom.core.clock import FakeClock
from postroom.core.types import Envelope, MessageRecord, MessageSlice
from postroom.mime.summary import summarize
from postroom.web import routes as web_routes
from postroom.web.routes import (
    INBOX_STYLES,
    SHELL_ROWS,
    SHELL_ROWS_COMPACT,
    client_host,
    form_encode,
    load_static,
    routes,
)

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def record(n: int, subject: str, read: bool = False) -> MessageRecord:
    summary = summarize(
        f"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{n}@example.com>\r\n\r\nHello {n}\r\n".encode()
    )
    return MessageRecord(
        id=f"ID{n}",
        project="default",
        created=NOW - timedelta(minutes=n),
        size=100 + n,
        read=read,
        envelope=Envelope("alice@example.com", ("bob@example.com",)),
        summary=summary,
        tags=(),
        username=None,
        status="captured",
        warnings=(),
    )


class ListedStore:
    """What the shell reads of the store: a page of the inbox and the project's tags.
    `hold`: page() waits for it (a store busy writing)."""

    def __init__(
        self, messages: tuple[MessageRecord, ...] = (), hold: threading.Event | None = None
    ) -> None:
        self.messages = messages
        self.hold = hold
        self.asked: list[tuple[str, Any, int, int]] = []

    def page(
        self, project: str, query: Any, start: int, limit: int, *, with_tags: bool = False
    ) -> MessageSlice:
        self.asked.append((project, query, start, limit))
        if self.hold is not None:
            self.hold.wait(10)
        shown = self.messages[start : start + limit]
        unread = sum(1 for m in self.messages if not m.read)
        more = start + limit < len(self.messages)
        return MessageSlice(
            shown, len(self.messages), unread, more, start, () if with_tags else None
        )

    def tags(self, project: str) -> list[str]:
        return []


def make_client(
    smtp: HostPort,
    smtp_port: Callable[[], int] | None = None,
    store: ListedStore | None = None,
) -> httpx.AsyncClient:
    context: Any = SimpleNamespace(
        config=Config(smtp=smtp, hostname="postroom.test"),
        smtp_port=smtp_port or (lambda: 0),
        project="default",
        store=store or ListedStore(),
        clock=FakeClock(NOW),
    )
    app = Starlette(routes=routes(cast(ApiContext, context)))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8025"
    )


@pytest.fixture
def client() -> httpx.AsyncClient:
    return make_client(HostPort("127.0.0.1", 1025))


async def test_shell_carries_addresses_and_loads_hashed_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'data-smtp="127.0.0.1:1025"' in page
    assert 'data-http="127.0.0.1:8025"' in page
    assert "swaks --to test@example.com --server 127.0.0.1:1025" in page
    version, _ = load_static()
    assert f'<script type="module" src="/ui/static/{version}/app.js"></script>' in page
    # One stylesheet (the inbox's, joined), and no module fetched ahead of the first paint.
    assert page.count('rel="stylesheet"') == 1
    assert f'<link rel="stylesheet" href="/ui/static/{version}/inbox.css">' in page
    assert "modulepreload" not in page


@pytest.mark.parametrize("path", ["/message/01ABC", "/view/01ABC", "/?q=tag:x"])
async def test_deep_links_get_the_shell(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert "app.js" in response.text


async def test_static_files_are_immutable_under_their_hash(client: httpx.AsyncClient) -> None:
    version, files = load_static()
    response = await client.get(f"/ui/static/{version}/app.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "immutable" in response.headers["cache-control"]
    assert response.content == files["app.js"].data
    css = await client.get(f"/ui/static/{version}/app.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    # The inbox's stylesheet: its parts in their order, each still served on its own.
    joined = await client.get(f"/ui/static/{version}/inbox.css")
    assert joined.headers["content-type"] == "text/css; charset=utf-8"
    assert "immutable" in joined.headers["cache-control"]
    assert joined.content == b"\n".join(files[name].data for name in INBOX_STYLES)
    assert css.content == files["app.css"].data
    stale = await client.get("/ui/static/0000oldhash/app.js")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("name", ["nope.js", "../routes.py", "..%2Froutes.py", "%2e%2e/routes.py"])
async def test_only_committed_static_files_are_served(client: httpx.AsyncClient, name: str) -> None:
    version, _ = load_static()
    response = await client.get(f"/ui/static/{version}/{name}", follow_redirects=True)
    assert response.status_code == 404
    assert "def routes" not in response.text


async def test_config_json() -> None:
    client = make_client(HostPort("0.0.0.0", 2525))
    data = (await client.get("/ui/config")).json()
    assert data["smtp"] == "0.0.0.0:2525"
    assert data["smtpExample"] == "swaks --to test@example.com --server 127.0.0.1:2525"
    assert data["http"] == "127.0.0.1:8025"
    assert data["version"] == __version__


async def test_bound_port_is_preferred_when_the_context_offers_it() -> None:
    client = make_client(HostPort("127.0.0.1", 0), smtp_port=lambda: 40123)
    assert (await client.get("/ui/config")).json()["smtp"] == "127.0.0.1:40123"
    assert 'data-smtp="127.0.0.1:40123"' in (await client.get("/")).text


async def test_port_zero_without_a_bound_port_shows_no_address() -> None:
    client = make_client(HostPort("127.0.0.1", 0))
    assert (await client.get("/ui/config")).json()["smtp"] == ""
    assert "(starting)" in (await client.get("/")).text


async def test_host_header_is_escaped_in_the_shell() -> None:
    client = make_client(HostPort("127.0.0.1", 1025))
    response = await client.get("/", headers={"Host": 'evil"><script>x</script>'})
    assert "<script>x</script>" not in response.text


def test_client_host_and_static_hash(tmp_path: Path) -> None:
    assert client_host(HostPort("0.0.0.0", 1)) == "127.0.0.1"
    assert client_host(HostPort("::", 1)) == "::1"
    assert client_host(HostPort("mail.local", 1)) == "mail.local"
    (tmp_path / "b.js").write_text("")
    (tmp_path / "app.js").write_text("")
    (tmp_path / "a.js").write_text("")
    (tmp_path / "x.css").write_text("")
    version, files = load_static(tmp_path)
    assert sorted(files) == ["a.js", "app.js", "b.js", "x.css"]
    (tmp_path / "a.js").write_text("changed")
    assert load_static(tmp_path)[0] != version


def test_form_encoding_matches_url_search_params() -> None:
    # What `new URLSearchParams({query: ...}).toString()` gives in a browser.
    assert form_encode("a b:c~*'é-._/") == "a+b%3Ac%7E*%27%C3%A9-._%2F"


async def test_shell_preloads_a_search_and_carries_the_inbox_page() -> None:
    store = ListedStore()
    client = make_client(HostPort("127.0.0.1", 1025), store=store)
    # A search's page is fetched by the browser while the scripts load (preload).
    page = (await client.get("/message/X", params={"q": " tag:a b ", "start": "100"})).text
    assert (
        'href="/api/v1/search?start=100&amp;limit=50&amp;counts=skip&amp;query=tag%3Aa+b"' in page
    )
    assert 'id="first-page"' not in page
    assert store.asked == []  # the shell does not run the search itself
    # The inbox's page is in the shell: no preload.
    page = (await client.get("/?start=-5")).text
    assert 'rel="preload"' not in page
    assert '<script type="application/json" id="first-page" data-start="0" data-limit="50">' in page
    assert store.asked == [("default", None, 0, 50)]
    page = (
        await client.get("/", params={"start": "100"}, headers={"Cookie": "postroom_page_size=25"})
    ).text
    assert 'id="first-page" data-start="100" data-limit="25"' in page
    assert store.asked[-1] == ("default", None, 100, 25)
    asked = len(store.asked)
    assert (await client.head("/")).status_code == 200
    assert len(store.asked) == asked  # a HEAD reads no page


def inline_page(html: str) -> Any:
    found = re.search(r'<script type="application/json" id="first-page"[^>]*>(.*?)</script>', html)
    assert found, html
    return json.loads(found.group(1))


async def test_the_inbox_shell_renders_its_first_rows() -> None:
    hostile = "</script><script>alert(1)</script> & <b>bold</b>"
    messages = (record(1, hostile), record(2, "Second", read=True), record(3, "Third"))
    client = make_client(HostPort("127.0.0.1", 1025), store=ListedStore(messages))
    html = (await client.get("/", headers={"Cookie": "postroom_page_size=25"})).text
    listed = re.search(r'<ul class="message-list"[^>]*>(.*?)</ul>', html, re.S)
    assert listed
    rows = listed.group(1)
    assert rows.count('<li class="row-item">') == 3
    assert '<a class="row unread" href="/message/ID1" data-id="ID1">' in rows
    assert '<a class="row" href="/message/ID2" data-id="ID2">' in rows
    assert (
        "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in rows
    )
    assert "<script>alert(1)" not in html
    assert (
        '<time class="row-time" datetime="2026-03-04T11:59:00Z" data-ts="2026-03-04T11:59:00Z">1 min ago</time>'
        in rows
    )
    assert (
        '<span class="list-count" id="list-count" aria-live="polite">1–3 of 3 messages, 2 unread</span>'
        in html
    )
    # The data block is the API's answer, read back whole (its "<" written as \u003c).
    data = inline_page(html)
    assert [m["ID"] for m in data["messages"]] == ["ID1", "ID2", "ID3"]
    assert data["messages"][0]["Subject"] == hostile
    assert (data["total"], data["unread"], data["messages_count"], data["more"]) == (3, 2, 3, False)
    assert "<" not in html.split('id="first-page"', 1)[1].split("</script>", 1)[0]


@pytest.mark.parametrize(
    ("cookie", "carried"), [("", SHELL_ROWS), ("postroom_density=compact", SHELL_ROWS_COMPACT)]
)
async def test_the_shell_carries_the_rows_that_fill_a_window(cookie: str, carried: int) -> None:
    # A page of 100: the shell's list has its first rows, the data block all of them (app.js
    # draws the others).
    messages = tuple(record(n, f"Subject {n}") for n in range(1, 101))
    client = make_client(HostPort("127.0.0.1", 1025), store=ListedStore(messages))
    headers = {"Cookie": f"postroom_page_size=100; {cookie}"}
    html = (await client.get("/", headers=headers)).text
    listed = re.search(r'<ul class="message-list"[^>]*>(.*?)</ul>', html, re.S)
    assert listed
    ids = re.findall(r'<a class="row unread" href="/message/(ID\d+)"', listed.group(1))
    assert ids == [f"ID{n}" for n in range(1, carried + 1)]
    assert len(inline_page(html)["messages"]) == 100
    assert "1–100 of 100 messages, 100 unread" in html


async def test_a_slow_store_leaves_the_first_page_to_the_browser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(web_routes, "FIRST_PAGE_WAIT", 0.05)
    hold = threading.Event()
    store = ListedStore((record(1, "Late"),), hold=hold)
    client = make_client(HostPort("127.0.0.1", 1025), store=store)
    try:
        page = (await client.get("/")).text
    finally:
        hold.set()
    assert store.asked  # it was asked, and did not answer in time
    assert (
        '<link rel="preload" href="/api/v1/messages?start=0&amp;limit=50&amp;counts=skip"' in page
    )
    assert 'id="first-page"' not in page
    assert "Late" not in page
