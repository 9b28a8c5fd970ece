"""The UI's own routes: the shell page, its configuration and the hashed static files."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from starlette.applications import Starlette

from postroom import __version__
from postroom.api.context import ApiContext
from postroom.config import Config, HostPort
from postroom.core.types import Address
from postroom.web.routes import client_host, load_static, module_order, routes
from tests.unit.web.fakes import FakeStore, FixedClock, record


def make_client(
    smtp: HostPort,
    smtp_port: Callable[[], int] | None = None,
    store: FakeStore | None = None,
) -> httpx.AsyncClient:
    context: Any = SimpleNamespace(
        config=Config(smtp=smtp, hostname="postroom.test"),
        store=store or FakeStore(),
        clock=FixedClock(),
        project="default",
    )
    if smtp_port is not None:
        context.smtp_port = smtp_port
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
    assert f'<link rel="modulepreload" href="/ui/static/{version}/list.js">' in page
    assert f'href="/ui/static/{version}/app.css"' in page


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


def test_client_host_and_module_order(tmp_path: Path) -> None:
    assert client_host(HostPort("0.0.0.0", 1)) == "127.0.0.1"
    assert client_host(HostPort("::", 1)) == "::1"
    assert client_host(HostPort("mail.local", 1)) == "mail.local"
    (tmp_path / "b.js").write_text("")
    (tmp_path / "app.js").write_text("")
    (tmp_path / "a.js").write_text("")
    (tmp_path / "x.css").write_text("")
    version, files = load_static(tmp_path)
    assert module_order(files) == ["a.js", "b.js", "app.js"]
    (tmp_path / "a.js").write_text("changed")
    assert load_static(tmp_path)[0] != version


def first_page_json(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="first-page">(.*?)</script>', page, re.S)
    assert match, "no first-page data block"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


async def test_shell_carries_the_first_page_as_rows_and_json() -> None:
    store = FakeStore(
        [
            record(2, "Newest", tags=("a", "b", "c", "d")),
            record(1, "Older", read=True, age=timedelta(days=3)),
        ]
    )
    client = make_client(HostPort("127.0.0.1", 1025), store=store)
    page = (await client.get("/", params={"start": "0"})).text
    rows = re.findall(r'<a class="row[^"]*" href="/message/(\w+)"', page)
    assert rows == [store.records[0].id, store.records[1].id]
    assert '<a class="row unread" href="/message/' in page
    assert '<span class="row-subject">Newest</span>' in page
    assert '<time class="row-time" datetime="2025-03-14T14:55:00Z"' in page
    assert ">5 min ago</time>" in page and ">3 days ago</time>" in page
    assert "To: </span>Bob, carol@example.com</span>" in page
    assert '<span class="tag tag-more" title="d">+1</span>' in page
    assert '<span class="row-size">2.0 KB</span>' in page
    data = first_page_json(page)
    assert data["q"] == "" and data["start"] == 0
    assert data["page"]["total"] == 2 and data["page"]["unread"] == 1
    assert [m["Subject"] for m in data["page"]["messages"]] == ["Newest", "Older"]
    assert data["page"]["tags"] == ["a", "b", "c", "d"]


async def test_shell_list_follows_the_url_search_and_offset() -> None:
    store = FakeStore([record(1, "One")])
    client = make_client(HostPort("127.0.0.1", 1025), store=store)
    page = (await client.get("/message/X", params={"q": " tag:a ", "start": "50"})).text
    query, start, limit = store.calls[-1]
    assert query is not None and query.terms[0].field == "tag" and (start, limit) == (50, 50)
    assert first_page_json(page)["q"] == "tag:a"
    page = (await client.get("/", params={"start": "-5"})).text
    assert store.calls[-1][1] == 0 and first_page_json(page)["start"] == 0


async def test_without_a_first_page_the_scripts_fetch_it() -> None:
    for store, params in [(FakeStore(fail=True), {}), (FakeStore(), {"q": "before:nonsense"})]:
        client = make_client(HostPort("127.0.0.1", 1025), store=store)
        response = await client.get("/", params=params)
        assert response.status_code == 200
        assert 'id="first-page"' not in response.text
        assert (
            '<ul class="message-list" id="message-list" aria-label="Messages, newest first"></ul>'
            in response.text
        )
        assert response.text.rstrip().endswith("</html>")


async def test_message_data_cannot_escape_the_rows_or_the_data_block() -> None:
    hostile = "</script><script>alert(1)</script><!--"
    store = FakeStore([record(1, hostile, tags=("<b>x</b>",), sender=Address(hostile, "e@x"))])
    page = (await make_client(HostPort("127.0.0.1", 1025), store=store).get("/")).text
    assert "<script>alert(1)" not in page
    assert page.count("</script>") == 2  # the module script and the data block
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page
    assert first_page_json(page)["page"]["messages"][0]["Subject"] == hostile
