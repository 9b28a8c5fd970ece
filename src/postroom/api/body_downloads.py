"""Downloads of a message's bodies: `GET /api/v1/message/{ID}/body.html` (its HTML as sent,
`cid:` references left alone) and `/body.txt` (its text part, or the text derived from the
HTML when it has none, like Mailpit's `Text`). Postroom additions.

Both are `Content-Disposition: attachment`, named after the subject (`Spring sale.html`, any
characters, RFC 6266 `filename*` with an ASCII fallback: api/disposition.py), the message ID
when there is none. The HTML goes out with the same sandbox CSP as a part: even a browser
that showed it instead of saving it would run nothing of it on Postroom's origin.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postroom.api.disposition import content_disposition
from postroom.api.mailpit import PART_CSP, ctx, message_record, parsed_view
from postroom.core.errors import NotFound
from postroom.core.types import MessageRecord

# Characters no file system takes in a name, and a bound on its length.
_NOT_IN_NAMES = str.maketrans({ch: "_" for ch in '/\\:*?"<>|'})
MAX_NAME = 100


def body_filename(record: MessageRecord, suffix: str) -> str:
    """`<subject><suffix>`, the subject cleaned for a file system; the ID when it is empty."""
    subject = "".join(ch for ch in record.summary.subject if ch.isprintable())
    stem = " ".join(subject.translate(_NOT_IN_NAMES).split())[:MAX_NAME].strip(" .")
    return f"{stem or record.id}{suffix}"


def _headers(record: MessageRecord, suffix: str) -> dict[str, str]:
    return {
        "Content-Disposition": content_disposition("attachment", body_filename(record, suffix)),
        "Content-Security-Policy": PART_CSP,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


async def body_html(request: Request) -> Response:
    record = await message_record(request)
    parsed = await parsed_view(ctx(request), record)
    if not parsed.html:
        raise NotFound("this message has no HTML part")
    return Response(
        parsed.html, media_type="text/html; charset=utf-8", headers=_headers(record, ".html")
    )


async def body_text(request: Request) -> Response:
    record = await message_record(request)
    parsed = await parsed_view(ctx(request), record)
    return Response(
        parsed.plain_text(),
        media_type="text/plain; charset=utf-8",
        headers=_headers(record, ".txt"),
    )


ROUTES = [
    Route("/api/v1/message/{id}/body.html", body_html, methods=["GET"]),
    Route("/api/v1/message/{id}/body.txt", body_text, methods=["GET"]),
]
