"""Rendered message bodies: /view/{ID}.html (untrusted HTML, sandboxed) and /view/{ID}.txt.

The HTML of a captured message is hostile until proven otherwise. It is served with its own
Content-Security-Policy: no script at all, a `sandbox` that gives the document an opaque origin
(so even opened on its own it cannot reach the UI's origin, cookies or API), no forms, and
images only from `data:` and this message's own parts (`cid:` references are rewritten to
`/api/v1/message/{ID}/part/{PartID}`). Remote images, stylesheets and fonts are blocked unless
`?remote=1` asks for them. `?embed=1` (the web UI's iframe) makes links open in a new tab.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from postroom.api.mailpit import ctx, message_record, parsed_view
from postroom.core.errors import NotFound
from postroom.core.types import AttachmentInfo

# A cid: URL inside an attribute value or a CSS url(): up to a quote, space, ) or >.
_CID_URL = re.compile(r"""\bcid:([^\s"'<>)]+)""", re.IGNORECASE)
_DOCTYPE = re.compile(r"\A(\ufeff?\s*<!doctype[^>]*>)", re.IGNORECASE)
_NETLOC = re.compile(r"\A(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?\Z")
# Links in the embedded view open in a new tab; the first <base> in a document wins.
_EMBED_HEAD = '<base target="_blank"><meta name="referrer" content="no-referrer">'


def _cid_key(value: str) -> str:
    return unquote(value).strip().strip("<>").strip().lower()


def part_url(message_id: str, part_id: str) -> str:
    return f"/api/v1/message/{quote(message_id, safe='')}/part/{quote(part_id, safe='')}"


def rewrite_cid(html: str, message_id: str, parts: Iterable[AttachmentInfo]) -> str:
    """Point `cid:` references at the message's own parts; unknown ones are left alone."""
    return replace_cid(
        html,
        {p.content_id: part_url(message_id, p.part_id) for p in parts if p.content_id},
    )


def replace_cid(html: str, urls: dict[str, str]) -> str:
    """Replace `cid:` references by the URL given for their Content-ID (compared as RFC 2392
    says: percent-decoded, without angle brackets, case aside); unknown ones stay."""
    by_cid = {_cid_key(cid): url for cid, url in urls.items()}
    if not by_cid:
        return html

    def replace(match: re.Match[str]) -> str:
        return by_cid.get(_cid_key(match.group(1)), match.group(0))

    return _CID_URL.sub(replace, html)


def embed(html: str) -> str:
    """Prepend the embedding head (after a doctype, so the document keeps its mode)."""
    match = _DOCTYPE.match(html)
    if match:
        return match.group(1) + _EMBED_HEAD + html[match.end() :]
    return _EMBED_HEAD + html


def html_policy(origin: str | None, message_id: str, remote: bool) -> str:
    """The CSP for a message's HTML. `origin` is "scheme://host:port" of this server."""
    parts = f"{origin}{part_url(message_id, '')}" if origin else "'self'"
    remote_sources = " https: http:" if remote else ""
    return "; ".join(
        [
            "default-src 'none'",
            f"img-src data: {parts}{remote_sources}",
            f"style-src 'unsafe-inline'{remote_sources}",
            f"font-src data:{remote_sources}",
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'self'",
            "sandbox allow-popups allow-popups-to-escape-sandbox",
        ]
    )


def request_origin(request: Request) -> str | None:
    """This server's origin as the browser sees it, or None if the Host header is unusual."""
    netloc = request.url.netloc
    if request.url.scheme not in ("http", "https") or not _NETLOC.match(netloc):
        return None
    return f"{request.url.scheme}://{netloc}"


async def view_html(request: Request) -> Response:
    record = await message_record(request)
    message_id = record.id
    parsed = await parsed_view(ctx(request), record)
    if not parsed.html:
        raise NotFound("this message has no HTML part")
    html = rewrite_cid(parsed.html, message_id, (*parsed.inline, *parsed.attachments))
    if request.query_params.get("embed") == "1":
        html = embed(html)
    remote = request.query_params.get("remote") == "1"
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": html_policy(request_origin(request), message_id, remote),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


async def view_text(request: Request) -> Response:
    parsed = await parsed_view(ctx(request), await message_record(request))
    return PlainTextResponse(parsed.plain_text())


ROUTES = [
    Route("/view/{id}.html", view_html, methods=["GET"]),
    Route("/view/{id}.txt", view_text, methods=["GET"]),
]
