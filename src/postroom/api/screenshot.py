"""`GET /api/v1/message/{ID}/screenshot.png?width=`: a PNG of the message's HTML as headless
Chromium draws it (checks/screenshot.py: no request leaves the browser, no script runs).
Postroom's addition; Mailpit makes its screenshot in the browser with html2canvas.

Images of the message's own parts (`cid:`) are drawn, inlined as `data:` URLs (image parts
only, at most MAX_INLINE bytes in all, from messages up to BIG_READ); remote images are not.
`width` is 320 to 1920 CSS pixels (default 1024); the page is cut at MAX_HEIGHT
(`X-Postroom-Cut: 1` says so). Named after the subject (`?dl=1`: as a download). Errors: 400
`Field: width`, 404 unknown message or no HTML, 503 `Field: chromium` when there is no
Chromium (`--chromium`) or it failed. One screenshot is made at a time; others wait.
"""

from __future__ import annotations

import base64
from functools import partial
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postroom.api.big_reads import BIG_READ
from postroom.api.body_downloads import body_filename
from postroom.api.disposition import content_disposition
from postroom.api.errors import json_error
from postroom.api.mailpit import blocking, ctx, int_param, message_record, parsed_view
from postroom.api.view import replace_cid
from postroom.checks.html_check import MAX_HTML
from postroom.checks.screenshot import ScreenshotFailed, find_chromium, screenshot
from postroom.core.errors import InvalidInput, NotFound
from postroom.core.types import AttachmentInfo
from postroom.mime.view import get_part

MAX_INLINE = 10 * 1024 * 1024
MAX_HEIGHT = 8000
MIN_WIDTH, MAX_WIDTH = 320, 1920


def _inline_images(raw: bytes, parts: list[AttachmentInfo]) -> dict[str, str]:
    """Content-ID -> data: URL of the image parts, within MAX_INLINE bytes in all."""
    urls: dict[str, str] = {}
    budget = MAX_INLINE
    for info in parts:
        if not info.content_id or not info.content_type.lower().startswith("image/"):
            continue
        if info.content_type.lower().startswith("image/svg"):
            continue  # a document, not a picture; the CSP would not run it, but why draw it
        part = get_part(raw, info.part_id)
        if len(part.data) > budget:
            break
        budget -= len(part.data)
        media = part.content_type.split(";", 1)[0].strip().lower()
        urls[info.content_id] = f"data:{media};base64,{base64.b64encode(part.data).decode()}"
    return urls


async def screenshot_route(request: Request) -> Response:
    c = ctx(request)
    width = int_param(request, "width", 1024)
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise InvalidInput(f"width must be {MIN_WIDTH} to {MAX_WIDTH} pixels", "width")
    record = await message_record(request)
    parsed = await parsed_view(c, record)
    if not parsed.html.strip():
        raise NotFound("this message has no HTML part")
    chromium = find_chromium(c.config.chromium)
    if chromium is None:
        why = (
            "screenshots are off (--chromium off)"
            if c.config.chromium.strip().lower() in ("off", "none", "no")
            else f"no Chromium found ({c.config.chromium or 'chromium'} is not on PATH): "
            "install it (Debian: apt-get install chromium) or name it with --chromium PATH"
        )
        return json_error(503, why, "chromium")
    html = parsed.html[:MAX_HTML]
    if record.size <= BIG_READ:
        raw = await blocking(c.store.raw, c.project, record.id)
        parts = [*parsed.inline, *parsed.attachments]
        html = replace_cid(html, await blocking(_inline_images, raw, parts))
    async with c.screenshots:
        try:
            shot = await blocking(
                partial(screenshot, chromium, html, width=width, max_height=MAX_HEIGHT)
            )
        except (ScreenshotFailed, OSError) as exc:
            return json_error(503, f"the screenshot failed: {exc}", "chromium")
    kind: Literal["attachment", "inline"] = (
        "attachment" if request.query_params.get("dl") else "inline"
    )
    headers = {
        "Cache-Control": "no-store",
        "Content-Disposition": content_disposition(kind, body_filename(record, ".png")),
        "X-Postroom-Cut": "1" if shot.cut else "0",
    }
    return Response(shot.png, media_type="image/png", headers=headers)


ROUTES = [Route("/api/v1/message/{id}/screenshot.png", screenshot_route, methods=["GET"])]
