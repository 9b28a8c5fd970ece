"""The checks of a message in Mailpit's API, under `/api/v1/message/{ID}`: `/html-check`
(which HTML and CSS features the message uses and how mail clients support them,
checks/html_check.py), `/link-check` (the HTTP status of every link and image,
checks/links.py), `/sa-check` (SpamAssassin's verdict through spamd, checks/spamd.py) and
`/part/{PartID}/thumb` (an image part's 180x120 JPEG thumbnail, checks/thumbnail.py),
`/headers-check` (a Postroom extension: DKIM, SPF, DMARC, List-Unsubscribe and header sanity
as a receiver judges them, checks/headers_check.py); and
`/api/v1/chaos` (the project's Chaos triggers for the capture door, doors/chaos.py).

Each answers for the message of the caller's project only (the API is built per project), so
another project's message is a 404 like an unknown one."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from postroom.api.big_reads import BIG_READ
from postroom.api.mailpit import blocking, ctx, json_body, message_record, parsed_view
from postroom.checks import spamd
from postroom.checks.headers_check import Connection, check_headers
from postroom.checks.html_check import MAX_HTML, html_check
from postroom.checks.html_support import load_table
from postroom.checks.http_probe import HttpProbe
from postroom.checks.links import Limits, check_links, extract_links
from postroom.checks.thumbnail import MAX_INPUT, blank, thumbnail
from postroom.config import HostPort
from postroom.core.errors import InvalidInput
from postroom.doors.chaos import Chaos, parse_triggers, triggers_json
from postroom.mime.view import get_part, get_part_stream
from postroom.pipeline.received import read_own_received
from postroom.platform.factory import LazyResolver


async def html_check_route(request: Request) -> Response:
    c = ctx(request)
    record = await message_record(request)
    parsed = await parsed_view(c, record)
    if not parsed.html.strip():
        raise InvalidInput("the message has no HTML body to check", "ID")
    table = load_table(c.config.html_check_data)
    return JSONResponse(await blocking(html_check, parsed.html, table))


def bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise InvalidInput(f"{name} must be true or false, got {raw!r}", name)


async def link_check_route(request: Request) -> Response:
    c = ctx(request)
    follow = bool_param(request, "follow")
    record = await message_record(request)
    parsed = await parsed_view(c, record)
    urls = await blocking(extract_links, parsed.html[:MAX_HTML], parsed.text[:MAX_HTML])
    probe = c.link_probe or HttpProbe(allow_private=c.config.link_check_allow_private)
    limits = Limits(request_timeout=c.config.link_check_timeout)
    async with c.link_checks:
        result = await check_links(urls, probe, follow=follow, limits=limits)
    return JSONResponse(result)


def _collect(chunks: Iterable[bytes], limit: int) -> bytes | None:
    """The chunks joined, or None as soon as they exceed `limit` bytes."""
    out = bytearray()
    for chunk in chunks:
        out += chunk
        if len(out) > limit:
            return None
    return bytes(out)


async def thumb_route(request: Request) -> Response:
    c = ctx(request)
    record = await message_record(request)
    part_id = request.path_params["part"]
    data: bytes | None
    if record.size <= BIG_READ:
        raw = await blocking(c.store.raw, c.project, record.id)
        part = await blocking(get_part, raw, part_id)
        content_type, data = part.content_type, part.data
        if len(data) > MAX_INPUT:
            data = None
    else:
        async with c.big_reads.slots:
            chunks = await blocking(c.store.raw_chunks, c.project, record.id)
            streamed = await blocking(get_part_stream, chunks, part_id)
            content_type = streamed.content_type
            data = None
            if content_type.lower().startswith("image/"):
                data = await blocking(_collect, streamed.chunks, MAX_INPUT)
            else:
                data = b""
    if data is None:
        raise InvalidInput(
            f"part {part_id} holds more than {MAX_INPUT} bytes, the most a thumbnail is made from",
            "PartID",
        )
    if content_type.lower().startswith("image/"):
        image = await blocking(thumbnail, data)
    else:
        image = await blocking(blank)
    return Response(image, media_type="image/jpeg", headers={"Cache-Control": "private"})


async def sa_check_route(request: Request) -> Response:
    c = ctx(request)
    record = await message_record(request)
    if not c.config.spamassassin:
        raise InvalidInput(
            "SpamAssassin is not enabled: start Postroom with --spamassassin HOST:PORT "
            "(the address of a running spamd)",
            "spamassassin",
        )
    server = HostPort.parse(c.config.spamassassin, "--spamassassin")
    if record.size > spamd.MAX_MESSAGE:
        result = spamd.too_big(record.size)  # not read at all
    else:
        raw = await blocking(c.store.raw, c.project, record.id)
        async with c.spam_checks:
            result = await spamd.check(server, raw)
    return JSONResponse(result.as_json())


HEADERS_CHECK_WHOLE = 32 * 1024 * 1024  # bigger messages: header section only, DKIM not verified
HEADER_SECTION_MAX = 1024 * 1024


def _head(chunks: Iterable[bytes]) -> bytes:
    """The header section (up to and including the empty line) of a message read as chunks,
    at most HEADER_SECTION_MAX bytes."""
    out = bytearray()
    for chunk in chunks:
        out += chunk
        end = out.find(b"\r\n\r\n")
        if end >= 0:
            return bytes(out[: end + 4])
        if len(out) > HEADER_SECTION_MAX:
            break
    return bytes(out[:HEADER_SECTION_MAX])


async def headers_check_route(request: Request) -> Response:
    c = ctx(request)
    record = await message_record(request)
    whole = record.size <= HEADERS_CHECK_WHOLE
    if record.size <= BIG_READ:
        raw = await blocking(c.store.raw, c.project, record.id)
    else:
        async with c.big_reads.slots:
            chunks = await blocking(c.store.raw_chunks, c.project, record.id)
            if whole:
                raw = await blocking(b"".join, chunks)
            else:
                raw = await blocking(_head, chunks)
    trace = read_own_received(raw)
    connection = Connection(
        client_ip=trace.client_ip if trace else "",
        helo=trace.helo if trace else "",
        mail_from=record.envelope.mail_from,
        received=record.created,
    )
    resolver = c.resolver or LazyResolver(c.config.resolver or None)
    async with c.header_checks:
        result = await check_headers(raw, connection, resolver, whole=whole)
    return JSONResponse(result.as_json())


def _chaos(request: Request) -> Chaos:
    chaos = ctx(request).chaos
    if chaos is None:
        raise InvalidInput("Chaos is not enabled: start Postroom with --enable-chaos", "chaos")
    return chaos


async def get_chaos(request: Request) -> Response:
    chaos = _chaos(request)
    return JSONResponse(triggers_json(chaos.triggers(ctx(request).project)))


async def put_chaos(request: Request) -> Response:
    chaos = _chaos(request)
    triggers = parse_triggers(await json_body(request))
    project = ctx(request).project
    chaos.set(project, triggers)
    return JSONResponse(triggers_json(chaos.triggers(project)))


ROUTES = [
    Route("/api/v1/chaos", get_chaos, methods=["GET"]),
    Route("/api/v1/chaos", put_chaos, methods=["PUT"]),
    Route("/api/v1/message/{id}/html-check", html_check_route, methods=["GET"]),
    Route("/api/v1/message/{id}/link-check", link_check_route, methods=["GET"]),
    Route("/api/v1/message/{id}/sa-check", sa_check_route, methods=["GET"]),
    Route("/api/v1/message/{id}/headers-check", headers_check_route, methods=["GET"]),
    Route("/api/v1/message/{id}/part/{part}/thumb", thumb_route, methods=["GET"]),
]
