"""Request body limits: every HTTP request body is bounded, checked while it streams in.

`BodyLimit` wraps the whole ASGI application. A declared Content-Length above the limit is
refused before a byte of the body is read (no `100 Continue` is sent either); a body without
one (chunked) is counted as it arrives and refused as soon as the count passes the limit. The
refusal is `413` with a JSON error that names the limit, and the connection is closed, so the
rest of an oversized body is never read into memory.

The limits derive from `--max-message-size` (`BodyLimits.from_max_message_size`): endpoints
that send a message take the message in JSON, attachments base64-encoded (4/3 of their size)
plus room for the other fields; every other endpoint takes small JSON documents or forms and
gets the smaller of that and `OTHER_LIMIT`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postroom.core.errors import PayloadTooLarge

# Endpoints whose body carries a whole message (JSON with base64 attachments).
SEND_PATHS = frozenset({"/api/v1/send", "/api/v2/messages", "/api/v2/messages/batch"})
# Room for the JSON around the base64 data (addresses, headers, text and HTML bodies).
JSON_OVERHEAD = 1024 * 1024
# Every other endpoint: JSON documents and forms (a list of tens of thousands of ids fits).
OTHER_LIMIT = 4 * 1024 * 1024


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than the limit of {limit} bytes for this endpoint "
        f"({describe_size(limit)}; it derives from --max-message-size)",
        limit,
    )


def describe_size(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    send: int
    other: int

    @classmethod
    def from_max_message_size(cls, max_message_size: int) -> BodyLimits:
        send = -(-max_message_size * 4 // 3) + JSON_OVERHEAD
        return cls(send=send, other=min(send, OTHER_LIMIT))

    def for_path(self, path: str) -> int:
        return self.send if path in SEND_PATHS else self.other


def _content_length(scope: Scope) -> int | str | None:
    """The declared length; None if absent; "bad" if it is not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else "bad"
    return None


def _refusal(status: int, error: str, field: str) -> tuple[Message, Message]:
    body = json.dumps({"Error": error, "Field": field}).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            # The rest of the body is not read: the connection cannot be reused.
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body, "more_body": False}


class BodyLimit:
    """ASGI middleware enforcing `limits` on every HTTP request body."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope["path"])
        declared = _content_length(scope)
        if declared == "bad":
            for message in _refusal(400, "Content-Length is not a number", "Content-Length"):
                await send(message)
            return
        if isinstance(declared, int) and declared > limit:
            for message in _refusal(413, str(too_large(limit)), "body"):
                await send(message)
            return
        received = 0
        started = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the app's own error response after our 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except PayloadTooLarge as exc:
            if started:
                raise
            refused = True
            for message in _refusal(413, str(exc), "body"):
                await send(message)
