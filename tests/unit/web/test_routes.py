"""The UI's own routes: the shell page, its configuration and the hashed static files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from starlette.applications import Starlette

from postroom import __version__
from postroom.api.context import ApiContext
from postroom.config import Config, HostPort
from postroom.web.routes import client_host, form_encode, load_static, module_order, routes


def make_client(smtp: HostPort, smtp_port: Callable[[], int] | None = None) -> httpx.AsyncClient:
    context: Any = SimpleNamespace(
        config=Config(smtp=smtp, hostname="postroom.test"),
        smtp_port=smtp_port or (lambda: 0),
        project="default",
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


def test_form_encoding_matches_url_search_params() -> None:
    # What `new URLSearchParams({query: ...}).toString()` gives in a browser.
    assert form_encode("a b:c~*'é-._/") == "a+b%3Ac%7E*%27%C3%A9-._%2F"


async def test_shell_preloads_the_first_list_request() -> None:
    client = make_client(HostPort("127.0.0.1", 1025))
    page = (await client.get("/")).text
    assert (
        '<link rel="preload" href="/api/v1/messages?start=0&amp;limit=50&amp;counts=skip" as="fetch"'
        in page
    )
    page = (await client.get("/message/X", params={"q": " tag:a b ", "start": "100"})).text
    assert (
        'href="/api/v1/search?start=100&amp;limit=50&amp;counts=skip&amp;query=tag%3Aa+b"' in page
    )
    assert (
        'href="/api/v1/messages?start=0&amp;limit=50&amp;counts=skip"'
        in (await client.get("/?start=-5")).text
    )
