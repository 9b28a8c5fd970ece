"""The testing API: a drop-in for Mailpit's /api/v1 (shared/specs/mailpit-api-v1.swagger.json)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, tzinfo
from functools import partial
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from postroom import __version__
from postroom.api.auth import principal_of
from postroom.api.big_reads import BIG_READ
from postroom.api.context import ApiContext
from postroom.api.disposition import content_disposition, inline_media_type
from postroom.api.list_page import uncounted_page
from postroom.api.send import build_message
from postroom.api.serialize import (
    address,
    addresses,
    attachment,
    envelope_bcc,
    message_summary,
    rfc3339,
)
from postroom.checks.screenshot import find_chromium
from postroom.config import Config
from postroom.core.errors import ConfigError, InvalidInput, PayloadTooLarge
from postroom.core.search import QuerySyntaxError, SearchQuery, Term, parse_query
from postroom.core.types import MessageRecord
from postroom.events.bus import MessageEvent
from postroom.mime.view import (
    ParsedMessage,
    get_part,
    get_part_stream,
    parse_message,
    parse_message_stream,
)

T = TypeVar("T")

# Parts are untrusted content served from our origin: never let them run or load anything.
PART_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox"


def ctx(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.ctx
    return context


async def blocking(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(fn, *args)


def int_param(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {raw!r}", name) from None
    if value < 0:
        raise InvalidInput(f"{name} must not be negative", name)
    return min(value, maximum) if maximum is not None else value


def tz_param(request: Request) -> tzinfo:
    """Mailpit's `tz`: the time zone for before:/after: dates (default UTC)."""
    name = request.query_params.get("tz", "")
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"tz: unknown time zone {name!r}", "tz") from None


def query_param(request: Request, name: str = "query") -> SearchQuery:
    text = request.query_params.get(name, "")
    return parse_query(text, ctx(request).clock.now(), tz=tz_param(request))


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}", "body") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object", "body")
    return body


def string_list(body: dict[str, Any], key: str) -> list[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{key} must be an array of strings", key)
    return value


COUNTS = ("exact", "skip")


async def list_response(request: Request, query: SearchQuery | None) -> Response:
    """A page of summaries with Mailpit's counts, or without counting a search's matches
    (Postroom's `counts=skip`: api/list_page.py)."""
    c = ctx(request)
    start = int_param(request, "start", 0)
    limit = int_param(request, "limit", 50, maximum=5000)
    counts = request.query_params.get("counts") or "exact"
    if counts not in COUNTS:
        raise InvalidInput(f"counts must be exact or skip, got {counts!r}", "counts")
    if counts == "skip":
        return JSONResponse(await blocking(uncounted_page, c.store, c.project, query, start, limit))
    page = await blocking(c.store.list, c.project, query, start, limit)
    # count: messages in this answer: no longer in Mailpit's spec, but Mailpit sends it
    # and clients read it (mailpit-api-client raises KeyError without it).
    body: dict[str, Any] = {
        "count": len(page.messages),
        "total": page.total,
        "unread": page.unread,
        "messages_count": page.matched,
        "messages_unread": page.matched_unread,
        "start": page.start,
    }
    body["tags"] = await blocking(c.store.tags, c.project)
    body["messages"] = [message_summary(m) for m in page.messages]
    return JSONResponse(body)


async def list_messages(request: Request) -> Response:
    return await list_response(request, None)


async def search_messages(request: Request) -> Response:
    if not request.query_params.get("query", "").strip():
        raise InvalidInput("query is required", "query")
    return await list_response(request, query_param(request))


async def set_read(request: Request) -> Response:
    c = ctx(request)
    body = await json_body(request)
    ids = string_list(body, "IDs") or None
    read = body.get("Read", False)
    if not isinstance(read, bool):
        raise InvalidInput("Read must be true or false", "Read")
    search = body.get("Search")
    if search is not None and not isinstance(search, str):
        raise InvalidInput("Search must be a string", "Search")
    query = None
    if search and not ids:
        try:
            query = parse_query(search, c.clock.now(), tz=tz_param(request))
        except QuerySyntaxError as exc:
            raise InvalidInput(str(exc), "Search") from None
    changed = await blocking(c.store.set_read, c.project, ids, query, read)
    if changed:
        c.bus.publish(MessageEvent("update", c.project, ids=tuple(changed)))
    return PlainTextResponse("ok")


async def publish_deleted(c: ApiContext, ids: list[str], everything: bool) -> None:
    c.metrics.messages_deleted.inc(len(ids))
    c.bus.publish(MessageEvent("truncate" if everything else "delete", c.project, ids=tuple(ids)))


async def delete_messages(request: Request) -> Response:
    c = ctx(request)
    body = await json_body(request)
    ids = string_list(body, "IDs") or None
    deleted = await blocking(c.store.delete, c.project, ids, None)
    await publish_deleted(c, deleted, ids is None)
    return PlainTextResponse("ok")


async def delete_search(request: Request) -> Response:
    c = ctx(request)
    if not request.query_params.get("query", "").strip():
        raise InvalidInput("query is required", "query")
    deleted = await blocking(c.store.delete, c.project, None, query_param(request))
    await publish_deleted(c, deleted, False)
    return PlainTextResponse("ok")


async def parsed_view(
    c: ApiContext, record: MessageRecord, *, checksums: bool = False
) -> ParsedMessage:
    """The message parsed for display, with its parts' checksums if asked. A big one is read
    as a stream and parsed from its small copy (mime/stream.py), one of at most BIG_READS at
    a time; its view is shared and kept, so it always comes with checksums."""
    if record.size <= BIG_READ:
        raw = await blocking(c.store.raw, c.project, record.id)
        return await blocking(partial(parse_message, raw, checksums=checksums))

    async def parse() -> ParsedMessage:
        chunks = await blocking(c.store.raw_chunks, c.project, record.id)
        return await blocking(partial(parse_message_stream, chunks, checksums=True))

    return await c.big_reads.view((c.project, record.id), parse)


async def _streamed(c: ApiContext, chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Chunks of a big message made in a thread, each made while holding a big-read slot."""
    while True:
        async with c.big_reads.slots:
            chunk = await blocking(next, chunks, None)
        if chunk is None:
            return
        yield chunk


async def get_message(request: Request) -> Response:
    c = ctx(request)
    record = await blocking(c.store.get, c.project, request.path_params["id"])
    parsed = await parsed_view(c, record, checksums=True)
    if not record.read and await c.big_reads.mark_read(
        (c.project, record.id),
        lambda: blocking(c.store.set_read, c.project, [record.id], None, True),
    ):
        c.bus.publish(MessageEvent("update", c.project, ids=(record.id,)))
    s = record.summary
    return JSONResponse(
        {
            "ID": record.id,
            "MessageID": s.message_id,
            # Not in Mailpit's document any more, but Mailpit sent it and clients written
            # against it read it (mailpit-api-client's Message needs it): the message is read
            # now, as this request marked it.
            "Read": True,
            "From": address(s.from_),
            "To": addresses(s.to),
            "Cc": addresses(s.cc),
            "Bcc": addresses(envelope_bcc(record)),
            "ReplyTo": addresses(s.reply_to),
            "ReturnPath": s.return_path or record.envelope.mail_from,
            "Subject": s.subject,
            "ListUnsubscribe": {
                "Header": parsed.list_unsubscribe.header,
                "HeaderPost": parsed.list_unsubscribe.header_post,
                "Links": list(parsed.list_unsubscribe.links),
                "Errors": parsed.list_unsubscribe.errors,
            },
            "Date": rfc3339(s.date or record.created),
            "Tags": list(record.tags),
            "Username": record.username or "",
            "Text": parsed.plain_text(),
            "HTML": parsed.html,
            "Size": record.size,
            "Inline": [attachment(a, parsed.checksums.get(a.part_id)) for a in parsed.inline],
            "Attachments": [
                attachment(a, parsed.checksums.get(a.part_id)) for a in parsed.attachments
            ],
            # Postroom additions.
            "Status": record.status,
            "Warnings": list(record.warnings),
            "Defects": list(parsed.defects),
            # The shown fields that could not be read (From/To/Cc/Bcc/Reply-To/Sender as
            # written, Date replaced by the receive time): {Header, Value, Warning}.
            "HeaderWarnings": [w.as_json() for w in parsed.header_warnings],
            "Envelope": {
                "From": record.envelope.mail_from,
                "To": list(record.envelope.recipients),
                "Params": dict(record.envelope.mail_params),
            },
        }
    )


async def message_record(request: Request) -> MessageRecord:
    c = ctx(request)
    return await blocking(c.store.get, c.project, request.path_params["id"])


async def get_headers(request: Request) -> Response:
    parsed = await parsed_view(ctx(request), await message_record(request))
    return JSONResponse(parsed.header_map)


async def get_raw(request: Request) -> Response:
    c = ctx(request)
    record = await message_record(request)
    headers = {}
    if request.query_params.get("dl"):
        headers["Content-Disposition"] = content_disposition("attachment", f"{record.id}.eml")
    media_type = "text/plain; charset=utf-8"
    if record.size <= BIG_READ:
        raw = await blocking(c.store.raw, c.project, record.id)
        return Response(raw, media_type=media_type, headers=headers)
    chunks = await blocking(c.store.raw_chunks, c.project, record.id)
    headers["Content-Length"] = str(record.size)
    return StreamingResponse(_streamed(c, chunks), media_type=media_type, headers=headers)


async def get_part_route(request: Request) -> Response:
    c = ctx(request)
    record = await message_record(request)
    part_id = request.path_params["part"]
    body: bytes | AsyncIterator[bytes]
    if record.size <= BIG_READ:
        raw = await blocking(c.store.raw, c.project, record.id)
        part = await blocking(get_part, raw, part_id)
        content_type, filename, body = part.content_type, part.filename, part.data
    else:
        async with c.big_reads.slots:
            chunks = await blocking(c.store.raw_chunks, c.project, record.id)
            streamed = await blocking(get_part_stream, chunks, part_id)
        content_type, filename = streamed.content_type, streamed.filename
        body = _streamed(c, streamed.chunks)
    # Inline (shown in the browser: the UI's "Open") only for the safe types, sent as their
    # bare type; HTML, SVG and the rest are always downloads, whatever the link asked for. An
    # "image/png" holding HTML stays an image to the browser (nosniff), and the sandbox CSP
    # gives whatever is shown an opaque origin with nothing allowed to run.
    shown = None if request.query_params.get("dl") else inline_media_type(content_type)
    disposition: Literal["attachment", "inline"] = "attachment" if shown is None else "inline"
    headers = {
        "Content-Disposition": content_disposition(disposition, filename),
        "Content-Security-Policy": PART_CSP,
        "X-Content-Type-Options": "nosniff",
    }
    media_type = shown or content_type or "application/octet-stream"
    if isinstance(body, bytes):
        return Response(body, media_type=media_type, headers=headers)
    return StreamingResponse(body, media_type=media_type, headers=headers)


async def get_tags(request: Request) -> Response:
    c = ctx(request)
    return JSONResponse(await blocking(c.store.tags, c.project))


async def put_tags(request: Request) -> Response:
    c = ctx(request)
    body = await json_body(request)
    ids = string_list(body, "IDs")
    tags = string_list(body, "Tags")
    if ids is None:
        raise InvalidInput("IDs is required", "IDs")
    if tags is None:
        raise InvalidInput("Tags is required", "Tags")
    await blocking(c.store.set_tags, c.project, ids, tags)
    c.bus.publish(MessageEvent("update", c.project, ids=tuple(ids)))
    return PlainTextResponse("ok")


async def rename_tag(request: Request) -> Response:
    c = ctx(request)
    body = await json_body(request)
    name = body.get("Name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("Name is required and must be a non-empty string", "Name")
    await blocking(c.store.rename_tag, c.project, request.path_params["tag"], name.strip())
    c.bus.publish(MessageEvent("update", c.project))
    return PlainTextResponse("ok")


async def delete_tag(request: Request) -> Response:
    c = ctx(request)
    await blocking(c.store.delete_tag, c.project, request.path_params["tag"])
    c.bus.publish(MessageEvent("update", c.project))
    return PlainTextResponse("ok")


async def send(request: Request) -> Response:
    c = ctx(request)
    # A JSON content type cannot be sent cross-origin without a CORS preflight, so a web page
    # the developer visits cannot drop mail into an open inbox with a "simple" form POST.
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise InvalidInput("Content-Type must be application/json", "Content-Type")
    body = await json_body(request)
    envelope, data = build_message(body, c.clock, c.config.hostname)
    limit = c.config.max_message_size
    if len(data) > limit:
        raise PayloadTooLarge(
            f"the message would be {len(data)} bytes, more than --max-message-size ({limit} bytes)",
            limit,
        )
    client = request.client
    key = principal_of(request).key
    message_id = await c.http_send.send(
        envelope,
        data,
        c.project,
        client.host if client else "",
        client.port if client else 0,
        principal=f"api:{key.id}" if key is not None else "api",
    )
    return JSONResponse({"ID": message_id})


def _sample(c: ApiContext, name: str, labels: dict[str, str] | None = None) -> int:
    value = c.metrics.registry.get_sample_value(name, labels or {})
    return int(value or 0)


async def info(request: Request) -> Response:
    c = ctx(request)
    page = await blocking(c.store.list, c.project, None, 0, 0)
    tags = await blocking(c.store.tags, c.project)
    tag_counts = {}
    for tag in tags:
        tagged = await blocking(
            c.store.list, c.project, SearchQuery((Term("tag", text=tag),)), 0, 0
        )
        tag_counts[tag] = tagged.matched
    # An API key is one tenant of the server: it sees its project's counts, not where the
    # database is, how big it is, or what the server's other doors received.
    tenant = principal_of(request).kind == "key"
    rejected = sum(
        int(s.value)
        for metric in c.metrics.registry.collect()
        if metric.name == "postroom_rejects"
        for s in metric.samples
        if s.name.endswith("_total")
    )
    return JSONResponse(
        {
            "Version": __version__,
            "LatestVersion": "",
            "Database": "" if tenant else c.database_label,
            "DatabaseSize": 0 if tenant else await blocking(c.store.database_size),
            "Messages": page.total,
            "Unread": page.unread,
            "Tags": tag_counts,
            "RuntimeStats": {
                "Memory": 0 if tenant else _rss_bytes(),
                "MessagesDeleted": 0 if tenant else _sample(c, "postroom_messages_deleted_total"),
                "SMTPAccepted": 0
                if tenant
                else _sample(c, "postroom_messages_received_total", {"door": "capture"}),
                "SMTPAcceptedSize": 0
                if tenant
                else _sample(c, "postroom_received_bytes_total", {"door": "capture"}),
                "SMTPIgnored": 0,
                "SMTPRejected": 0 if tenant else rejected,
                "Uptime": int(c.clock.monotonic() - c.started),
            },
        }
    )


def _rss_bytes() -> int:
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _relay_settings(config: Config) -> dict[str, Any]:
    """Mailpit's MessageRelay block: release (POST .../release) goes through --relay, the
    message byte for byte (its Message-ID kept, its envelope sender as Return-Path)."""
    from postroom.delivery.worker import Relay

    server = ""
    if config.relay:
        try:
            relay = Relay.parse(config.relay)
            server = f"{relay.host}:{relay.port}"  # never its credentials
        except ConfigError:
            server = ""
    return {
        "Enabled": bool(server),
        "SMTPServer": server,
        "AllowedRecipients": config.release_allowed_recipients,
        "BlockedRecipients": "",
        "OverrideFrom": "",
        "ReturnPath": "",
        "PreserveMessageIDs": True,
    }


async def webui(request: Request) -> Response:
    return JSONResponse(
        {
            "Label": "Postroom",
            "MessageRelay": _relay_settings(ctx(request).config),
            "SpamAssassin": bool(ctx(request).config.spamassassin),
            "ChaosEnabled": ctx(request).chaos is not None,
            # Postroom: whether GET /api/v1/message/{ID}/screenshot.png can work here.
            "Screenshots": find_chromium(ctx(request).config.chromium) is not None,
            "DuplicatesIgnored": False,
            "HideDeleteAllButton": False,
        }
    )


async def _release(request: Request) -> Response:
    from postroom.api.release import release_message

    return await release_message(request)


ROUTES = [
    Route("/api/v1/info", info, methods=["GET"]),
    Route("/api/v1/webui", webui, methods=["GET"]),
    Route("/api/v1/messages", list_messages, methods=["GET"]),
    Route("/api/v1/messages", set_read, methods=["PUT"]),
    Route("/api/v1/messages", delete_messages, methods=["DELETE"]),
    Route("/api/v1/search", search_messages, methods=["GET"]),
    Route("/api/v1/search", delete_search, methods=["DELETE"]),
    Route("/api/v1/message/{id}", get_message, methods=["GET"]),
    Route("/api/v1/message/{id}/headers", get_headers, methods=["GET"]),
    Route("/api/v1/message/{id}/raw", get_raw, methods=["GET"]),
    Route("/api/v1/message/{id}/part/{part}", get_part_route, methods=["GET"]),
    Route("/api/v1/tags", get_tags, methods=["GET"]),
    Route("/api/v1/tags", put_tags, methods=["PUT"]),
    Route("/api/v1/tags/{tag}", rename_tag, methods=["PUT"]),
    Route("/api/v1/tags/{tag}", delete_tag, methods=["DELETE"]),
    Route("/api/v1/send", send, methods=["POST"]),
    Route("/api/v1/message/{id}/release", _release, methods=["POST"]),
]
