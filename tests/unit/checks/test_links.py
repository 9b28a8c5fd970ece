"""The link check with an injected probe: which URLs are taken, redirects followed hop by
hop (or reported), errors counted, and the bounds on count, time and redirects."""

from __future__ import annotations

import asyncio

import pytest

from postroom.checks.http_probe import parse_head
from postroom.checks.links import Hop, Limits, check_links, extract_links
from postroom.core.errors import LinkUnreachable


def test_extract_links_takes_http_links_and_images_once() -> None:
    html = (
        '<a href="https://a.example/x">x</a><a href="https://a.example/x#part">again</a>'
        '<img src="http://img.example/i.png"><a href="mailto:a@b.example">mail</a>'
        '<a href="#top">top</a><a href="javascript:alert(1)">js</a><link href="https://c.example/s.css">'
    )
    text = "Visit https://t.example/page. Or (https://a.example/x)."
    assert extract_links(html, text) == [
        "https://a.example/x",
        "http://img.example/i.png",
        "https://c.example/s.css",
        "https://t.example/page",
    ]


class FakeWeb:
    def __init__(self, pages: dict[str, Hop | Exception | float]) -> None:
        self.pages = pages
        self.asked: list[str] = []

    async def __call__(self, url: str) -> Hop:
        self.asked.append(url)
        page = self.pages[url]
        if isinstance(page, Exception):
            raise page
        if isinstance(page, float):
            await asyncio.sleep(page)
            return Hop(200)
        return page


PAGES: dict[str, Hop | Exception | float] = {
    "http://w.example/ok": Hop(200, "OK"),
    "http://w.example/gone": Hop(404, "Not Found"),
    "http://w.example/old": Hop(301, "Moved", "/new"),
    "http://w.example/new": Hop(302, "Found", "http://w.example/ok"),
    "http://w.example/refused": LinkUnreachable("refused: w.example is at 10.0.0.1"),
    "http://w.example/slow": 5.0,
    "http://w.example/loop": Hop(302, "Found", "/loop"),
    "http://w.example/ftp": Hop(302, "Found", "ftp://w.example/file"),
}


async def test_statuses_redirects_and_errors() -> None:
    web = FakeWeb(PAGES)
    urls = list(PAGES)
    limits = Limits(request_timeout=0.1, max_redirects=3)
    followed = await check_links(urls, web, follow=True, limits=limits)
    links = {link["URL"]: link for link in followed["Links"]}
    assert [link["URL"] for link in followed["Links"]] == urls
    assert links["http://w.example/ok"]["StatusCode"] == 200
    assert links["http://w.example/ok"]["Status"] == "OK"
    assert links["http://w.example/gone"]["Status"] == "Not Found"
    old = links["http://w.example/old"]
    assert old["StatusCode"] == 200
    assert old["Redirects"] == [
        {"URL": "http://w.example/old", "StatusCode": 301},
        {"URL": "http://w.example/new", "StatusCode": 302},
    ]
    assert links["http://w.example/refused"]["StatusCode"] == 0
    assert links["http://w.example/refused"]["Status"].startswith("refused:")
    assert links["http://w.example/slow"]["Status"] == "timed out after 0.1 s"
    assert links["http://w.example/loop"]["Status"] == "more than 3 redirects"
    assert links["http://w.example/ftp"]["Status"].startswith("redirected to a non-HTTP URL")
    # gone, refused, slow, loop, ftp
    assert followed["Errors"] == 5
    assert followed["NotChecked"] == []

    reported = await check_links(urls, FakeWeb(PAGES), follow=False, limits=limits)
    old = next(link for link in reported["Links"] if link["URL"] == "http://w.example/old")
    assert old["StatusCode"] == 301 and old["Redirects"] == []


async def test_bounds_on_count_and_total_time() -> None:
    pages: dict[str, Hop | Exception | float] = {
        f"http://w.example/{i}": Hop(200) for i in range(7)
    }
    web = FakeWeb(pages)
    result = await check_links(list(pages), web, follow=False, limits=Limits(max_links=5))
    assert len(result["Links"]) == 5 and len(web.asked) == 5
    assert result["NotChecked"] == ["http://w.example/5", "http://w.example/6"]

    slow: dict[str, Hop | Exception | float] = {f"http://s.example/{i}": 1.0 for i in range(4)}
    limits = Limits(request_timeout=5, total_timeout=0.2, concurrency=2)
    result = await check_links(list(slow), FakeWeb(slow), follow=False, limits=limits)
    assert [link["Status"] for link in result["Links"]] == [
        "not checked: the check's 0.2 s ran out"
    ] * 4
    assert result["Errors"] == 4


def test_parse_head() -> None:
    hop = parse_head(b"HTTP/1.1 301 Moved Permanently\r\nLocation: /x\r\n\r\n")
    assert hop == Hop(301, "Moved Permanently", "/x")
    with pytest.raises(LinkUnreachable, match="not an HTTP answer"):
        parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")


async def test_probe_refuses_non_public_addresses_before_connecting() -> None:
    from postroom.checks.http_probe import HttpProbe

    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return {
            "rebind.example": ["93.184.216.34", "10.1.2.3"],
            "meta.example": ["169.254.169.254"],
            "v6.example": ["::ffff:127.0.0.1"],
            "empty.example": [],
        }[host]

    probe = HttpProbe(resolve=resolve)
    for host, shown in (
        ("rebind.example", "10.1.2.3"),
        ("meta.example", "169.254.169.254"),
        ("v6.example", "::ffff:127.0.0.1"),
    ):
        with pytest.raises(LinkUnreachable) as refused:
            await probe(f"http://{host}/x")
        assert str(refused.value) == (
            f"refused: {host} is at {shown}, not a public address "
            "(--link-check-allow-private allows it)"
        )
    with pytest.raises(LinkUnreachable, match=r"empty\.example has no address"):
        await probe("https://empty.example/")
    with pytest.raises(LinkUnreachable, match="not an http"):
        await probe("ftp://rebind.example/")
    assert asked == ["rebind.example", "meta.example", "v6.example", "empty.example"]
