"""The SES-compatible API's HTTP application, served on its own listener (`--ses HOST:PORT`)
and/or under a path of the HTTP listener (`--ses-prefix /ses`, SesPrefix).

Every request meets, in order, before any handler runs:

1. the Host check of the other HTTP listener (api/guard.py's HostRule: loopback names, the
   listener's address, --public-url, --allowed-hosts), against DNS rebinding;
2. a body limit derived from --max-message-size (a raw message in base64 plus room);
3. AWS Signature Version 4 (api/sigv4.py) with one of the projects' SES access keys: a missing,
   malformed, expired (more than five minutes off) or wrong signature is refused with AWS's
   error names. A send whose signature already did its work (a 2xx answer) is refused as a
   replay (`RequestExpired`): a captured request cannot send its mail twice. Other operations
   are reads or idempotent (a repeated create or delete fails on its own), and a failed send
   may be repeated as it was, so that an SDK's retry signed within the same second (hence
   identically) goes through.
4. For a send, the platform's change counter is read (`before_send`): the project snapshots
   of the send door are dropped when it moved, so a project suspended or changed (by the CLI,
   another process) applies to this very send, not after the snapshots' TTL.

Only then does the request reach the API v1 (query, `POST /`) or v2 (`/v2/email/...`) handlers,
acting on the key's project only. This is the one place where Postroom takes form-encoded
posts outside the admin forms: the JSON-only rule of the other listener protects against
cross-site requests riding on a browser's ambient rights (cookies, loopback), and none of
those can produce a valid signature, which needs the secret key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from postroom.api import ses_v1, ses_v2
from postroom.api.guard import HostRule, host_name
from postroom.api.limits import JSON_OVERHEAD
from postroom.api.ses_context import CALLER, Caller, SesApi
from postroom.api.ses_errors import SesError
from postroom.api.sigv4 import (
    ReplayCache,
    SignedRequest,
    SigV4Error,
    Verified,
    query_pairs,
    verify,
)
from postroom.core.clock import Clock
from postroom.core.errors import PostroomError

log = logging.getLogger("postroom.ses")

SIGNING_SERVICE = "ses"
_SEND_ACTIONS = frozenset({"SendEmail", "SendRawEmail", "SendTemplatedEmail"})
_SEND_PATHS = frozenset({"/v2/email/outbound-emails", "/v2/email/outbound-bulk-emails"})


def _error(path: str, error: SesError) -> Response:
    """An error in the shape of the API the path belongs to (v1: XML at /, v2: JSON)."""
    if path == "/":
        return ses_v1.error_response(error)
    return ses_v2.error_response(error)


async def _unknown(request: Request, exc: Exception) -> Response:
    return ses_v2.error_response(
        SesError(
            "UnknownOperationException",
            f"{request.method} {request.url.path} is not an operation this server serves",
            404,
        )
    )


def build_ses_app(api: SesApi) -> Starlette:
    routes = [*ses_v2.routes(api), Route("/", ses_v1.endpoint(api), methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={404: _unknown, 405: _unknown})


class SesGate:
    """ASGI: Host check, body limit and SigV4 in front of the SES app (see the module)."""

    def __init__(
        self,
        app: Any,
        secret_for: Callable[[str], tuple[str, str] | None],
        clock: Clock,
        hosts: HostRule,
        max_message_size: int,
        prefix: str = "",
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`before_send` runs after a send's signature is checked, before its handler (the
        platform's change counter read, which drops the send door's stale project
        snapshots: a project suspended applies to the very next send)."""
        self.before_send = before_send
        self.app = app
        self.prefix = prefix  # served under it on the HTTP listener (SesPrefix), else ""
        self.secret_for = secret_for
        self.clock = clock
        self.hosts = hosts
        self.limit = -(-max_message_size * 4 // 3) + JSON_OVERHEAD
        self.replays = ReplayCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        name = host_name(headers.get("host", ""))
        if name is None or not self.hosts.allows(name):
            error = SesError("InvalidHost", "this server does not answer to that Host header", 421)
            await _error(path, error)(scope, receive, send)
            return
        body = await _read(receive, self.limit)
        if body is None:
            error = SesError(
                "MessageRejected", f"the request body is larger than {self.limit} bytes", 413
            )
            response = _error(path, error)
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or path.encode()
        signed = SignedRequest(
            method=scope["method"],
            raw_path=raw_path.decode("latin-1").split("?", 1)[0],  # as signed, with the prefix
            query=query_pairs(scope.get("query_string", b"").decode("latin-1")),
            headers=headers,
            body=body,
        )
        try:
            caller, verified = await self._authenticate(signed, body)
        except SigV4Error as exc:
            request = f"{scope['method']} {path}"
            log.info("SES request refused: %s", exc.code, extra={"request": request})
            await _error(path, SesError(exc.code, str(exc), exc.status))(scope, receive, send)
            return
        scope[CALLER] = caller
        if verified is None:
            await self.app(scope, _replay(body), send)
            return
        if self.before_send is not None:
            try:
                await self.before_send()
            except PostroomError:
                self.replays.forget(verified)  # nothing was sent: it may come again
                error = SesError("ServiceUnavailable", "storage unavailable, try again", 503, 5)
                await _error(path, error)(scope, receive, send)
                return
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, _replay(body), observe)
        finally:
            if status >= 300:
                self.replays.forget(verified)  # a failed request may be sent again as it was

    async def _authenticate(
        self, signed: SignedRequest, body: bytes
    ) -> tuple[Caller, Verified | None]:
        """The caller, and the verified signature when it counts against replays."""
        found: dict[str, tuple[str, str] | None] = {}
        header = signed.headers.get("authorization", "")
        key_id = header.partition("Credential=")[2].partition("/")[0]
        if key_id:
            found[key_id] = await asyncio.to_thread(self.secret_for, key_id)

        def secret(access_key: str) -> str | None:
            entry = found.get(access_key)
            return entry[1] if entry is not None else None

        now = self.clock.now()
        verified = verify(signed, secret, now)
        if verified.service != SIGNING_SERVICE:
            raise SigV4Error(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{SIGNING_SERVICE}'",
            )
        route = signed.raw_path[len(self.prefix) :] if self.prefix else signed.raw_path
        counted = _is_send(signed.method, route, body)
        if counted:
            self.replays.check(verified, now)
        entry = found[verified.access_key_id]
        assert entry is not None
        return Caller(entry[0], verified.access_key_id), verified if counted else None


def _is_send(method: str, route: str, body: bytes) -> bool:
    if route in ("", "/"):
        action = body.partition(b"Action=")[2].partition(b"&")[0].decode("latin-1")
        return action in _SEND_ACTIONS
    return method == "POST" and route in _SEND_PATHS


class SesPrefix:
    """ASGI: requests under `prefix` (`--ses-prefix`) go to the SES gate with the prefix taken
    off their path (the signature still covers the path as sent); the rest to `app`."""

    def __init__(self, prefix: str, gate: SesGate, app: Any) -> None:
        self.prefix = prefix
        self.gate = gate
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path == self.prefix or path.startswith(self.prefix + "/"):
                inner = dict(scope)
                inner["path"] = path[len(self.prefix) :] or "/"
                await self.gate(inner, receive, send)
                return
        await self.app(scope, receive, send)


async def _read(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays until the answer is sent
        return {"type": "http.disconnect"}

    return receive


__all__ = ["SesGate", "SesPrefix", "build_ses_app"]
