"""The link check: every http(s) link and image URL of a message, each with the HTTP status
a request for it gets (Mailpit's LinkCheckResponse), bounded in count, time and concurrency.

The requests go through an injected `LinkProbe` (checks/http_probe.py in production, a fake
in unit tests). One probe call is one request: redirects are followed here, hop by hop, so
that each new address passes the probe's address policy again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http import HTTPStatus
from typing import Any
from urllib.parse import urljoin, urlsplit

from postroom.core.errors import LinkUnreachable

MAX_LINKS = 100  # URLs checked per message (the rest are reported as not checked)
MAX_REDIRECTS = 5
REQUEST_TIMEOUT = 5.0  # seconds for one request (connect, send, read the status and headers)
TOTAL_TIMEOUT = 30.0  # seconds for the whole check
CONCURRENCY = 4  # requests in flight per check

_TEXT_URL = re.compile(r"""https?://[^\s<>"'()\[\]{}]+""", re.IGNORECASE)
_LINK_ATTRS = {("a", "href"), ("area", "href"), ("img", "src"), ("link", "href")}


@dataclass(frozen=True, slots=True)
class Hop:
    """One HTTP answer: its status, reason phrase and Location (for a redirect)."""

    status: int
    reason: str = ""
    location: str = ""


LinkProbe = Callable[[str], Awaitable[Hop]]


@dataclass
class LinkResult:
    url: str
    status: int = 0
    text: str = ""
    redirects: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "URL": self.url,
            "StatusCode": self.status,
            "Status": self.text,
            "Redirects": self.redirects,
        }


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (tag, name) in _LINK_ATTRS:
                self.urls.append(value.strip())


def extract_links(html: str, text: str) -> list[str]:
    """The distinct http(s) URLs of the HTML's links and images and of the text body, in
    order of appearance (HTML first)."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    found = [*collector.urls, *(m.group(0).rstrip(".,;:!?") for m in _TEXT_URL.finditer(text))]
    seen: dict[str, None] = {}
    for url in found:
        parts = urlsplit(url)
        if parts.scheme.lower() in ("http", "https") and parts.hostname:
            seen.setdefault(url.split("#", 1)[0] or url, None)
    return list(seen)


def status_text(status: int, reason: str) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return reason or "Unknown"


@dataclass(frozen=True, slots=True)
class Limits:
    max_links: int = MAX_LINKS
    max_redirects: int = MAX_REDIRECTS
    request_timeout: float = REQUEST_TIMEOUT
    total_timeout: float = TOTAL_TIMEOUT
    concurrency: int = CONCURRENCY


async def _one(url: str, probe: LinkProbe, follow: bool, limits: Limits) -> LinkResult:
    result = LinkResult(url)
    current = url
    for _ in range(limits.max_redirects + 1):
        try:
            async with asyncio.timeout(limits.request_timeout):
                hop = await probe(current)
        except TimeoutError:
            result.text = f"timed out after {limits.request_timeout:g} s"
            return result
        except LinkUnreachable as exc:
            result.text = str(exc)
            return result
        result.status, result.text = hop.status, status_text(hop.status, hop.reason)
        if not (follow and 300 <= hop.status < 400 and hop.location):
            return result
        result.redirects.append({"URL": current, "StatusCode": hop.status})
        current = urljoin(current, hop.location)
        if urlsplit(current).scheme.lower() not in ("http", "https"):
            result.status, result.text = 0, f"redirected to a non-HTTP URL: {current}"
            return result
    result.status, result.text = 0, f"more than {limits.max_redirects} redirects"
    return result


async def check_links(
    urls: list[str], probe: LinkProbe, *, follow: bool, limits: Limits | None = None
) -> dict[str, Any]:
    """Mailpit's LinkCheckResponse for these URLs (Postroom adds each link's `Redirects` and
    `NotChecked`, the URLs over the count bound)."""
    limits = limits or Limits()
    checked, skipped = urls[: limits.max_links], urls[limits.max_links :]
    gate = asyncio.Semaphore(limits.concurrency)
    results = [LinkResult(url) for url in checked]

    async def run(index: int) -> None:
        async with gate:
            results[index] = await _one(checked[index], probe, follow, limits)

    tasks = [asyncio.create_task(run(i)) for i in range(len(checked))]
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=limits.total_timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for index, task in enumerate(tasks):
            if task in pending:
                results[index].text = f"not checked: the check's {limits.total_timeout:g} s ran out"
    return {
        "Errors": sum(1 for r in results if r.status == 0 or r.status >= 400),
        "Links": [r.as_json() for r in results],
        "NotChecked": skipped,
    }
