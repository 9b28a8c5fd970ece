"""The native send API: `POST /api/v2/messages` and `POST /api/v2/messages/batch`.

A request is authenticated by an API key with the `send` scope (its project receives the
message), or by an admin session (the body's `project`, default "default"); open mode sends
into capture projects only. The body (api/native_message.py) becomes an envelope and a
message that the HTTP send door hands to the acceptance pipeline: the same path as SMTP
submission (verified identities, quotas with 429 and Retry-After, DKIM, durable queue) for a
live project, captured for a capture project.

The answer names the message and each recipient: `accepted`, `suppressed` (a live project's
recipient on its suppression list, or the account's: the pipeline records a `suppressed`
event for it instead of a delivery, pipeline/acceptance.py) or `refused` with the reason (a
live project's recipient that the pipeline would never deliver to, pipeline/destinations.py);
the message goes to the others. A message none of whose
recipients is accepted, or that the pipeline refuses whole (unverified sender, quota), is an
error (4xx JSON).

A batch holds up to 500 messages, each accepted or refused on its own (its own status and
answer, in order). `Idempotency-Key` (api/idempotency.py) covers single and batch requests.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from postroom.api.auth import principal_of
from postroom.api.errors import handle_postroom_error
from postroom.api.idempotency import HEADER, Answer, Idempotency, answer_response
from postroom.api.mailpit import json_body
from postroom.api.native_message import Built, build
from postroom.config import Config
from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, PayloadTooLarge, PostroomError, Refusal
from postroom.core.platform import DEFAULT_PROJECT
from postroom.core.types import DoorName, Envelope
from postroom.doors.http_send import HttpSendDoor, Outgoing
from postroom.pipeline.destinations import destination_refusal
from postroom.pipeline.projects import ProjectDirectory

__all__ = ["MAX_BATCH", "SendingContext", "routes"]

MAX_BATCH = 500

# Renders a send request's template fields into plain ones (api/templates_api.py), if any.
TemplateRenderer = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class SendingContext:
    config: Config
    clock: Clock
    door: HttpSendDoor
    directory: ProjectDirectory | None
    routed: frozenset[str]
    idempotency: Idempotency | None
    render_template: TemplateRenderer | None = None


@dataclass(frozen=True, slots=True)
class Peer:
    host: str
    port: int
    principal: str
    door: DoorName = "http"


async def error_answer(request: Request, exc: PostroomError) -> Answer:
    response = await handle_postroom_error(request, exc)
    headers = (
        {"Retry-After": response.headers["retry-after"]}
        if "retry-after" in response.headers
        else {}
    )
    return response.status_code, json.loads(bytes(response.body)), headers


class Sender:
    """Sends one message of a request: template, build, recipients, door."""

    def __init__(self, ctx: SendingContext) -> None:
        self.ctx = ctx

    async def live(self, project: str) -> bool:
        if self.ctx.directory is None:
            return False
        view = await self.ctx.directory.get(project)
        return view.project.mode == "live"

    async def send(self, project: str, body: dict[str, Any], peer: Peer) -> dict[str, Any]:
        return await self.send_built(project, await self.build(project, body), peer)

    async def build(self, project: str, body: dict[str, Any]) -> Built:
        """The message a request body asks for, its template rendered."""
        ctx = self.ctx
        if body.get("template") is not None:
            if ctx.render_template is None:
                raise InvalidInput("templates are not available on this server", "template")
            body = await ctx.render_template(project, body)
        return build(body, ctx.clock, ctx.config.hostname)

    async def send_built(
        self,
        project: str,
        built: Built,
        peer: Peer,
        *,
        all_or_nothing: bool = False,
        tags: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """Send `built`; its answer. `all_or_nothing` (the SES API): one refused recipient
        refuses the message. The suppressed recipients are those the pipeline found. `tags`:
        stored with the message besides its own (the SES API's, not written into it)."""
        results, envelope = self._screen(built, await self.live(project), all_or_nothing)
        suppressed: dict[str, tuple[str, str]] = {}  # what the pipeline found
        message_id = await self.ctx.door.send(
            envelope,
            built.data,
            project,
            peer.host,
            peer.port,
            peer.principal,
            peer.door,
            suppressed_out=suppressed,
            metadata=built.metadata,
            send_at=built.send_at,
            tags=tags,
            summary=built.summary,
        )
        return _answer(message_id, project, built, results, suppressed)

    async def send_built_many(
        self,
        project: str,
        messages: Sequence[tuple[Built, tuple[str, ...]]],
        peer: Peer,
        *,
        all_or_nothing: bool = False,
    ) -> list[dict[str, Any] | PostroomError]:
        """`send_built` for the (message, tags) pairs of one request (SendBulkEmail): each
        accepted or refused on its own (its answer or its error, in order), the accepted ones
        checked, signed and committed together (HttpSendDoor.send_many)."""
        live = await self.live(project)
        out: list[dict[str, Any] | PostroomError] = []
        screened: list[tuple[int, list[dict[str, Any]], Outgoing]] = []
        for index, (built, tags) in enumerate(messages):
            try:
                results, envelope = self._screen(built, live, all_or_nothing)
            except PostroomError as exc:
                out.append(exc)
                continue
            out.append({})  # its answer, once sent
            outgoing = Outgoing(
                envelope, built.data, built.metadata, built.send_at, tags, built.summary
            )
            screened.append((index, results, outgoing))
        if not screened:
            return out
        suppressed: dict[str, tuple[str, str]] = {}
        sent = await self.ctx.door.send_many(
            [outgoing for _, _, outgoing in screened],
            project,
            peer.host,
            peer.port,
            peer.principal,
            peer.door,
            suppressed_out=suppressed,
        )
        for (index, results, _), message_id in zip(screened, sent, strict=True):
            built = messages[index][0]
            out[index] = (
                message_id
                if isinstance(message_id, PostroomError)
                else _answer(message_id, project, built, results, suppressed)
            )
        return out

    def _screen(
        self, built: Built, live: bool, all_or_nothing: bool
    ) -> tuple[list[dict[str, Any]], Envelope]:
        """The size limit and the recipients a live project never delivers to: each
        recipient's result so far and the envelope of the accepted ones; raises when the
        message is refused whole."""
        ctx = self.ctx
        limit = ctx.config.max_message_size
        if limit and len(built.data) > limit:
            raise PayloadTooLarge(
                f"the message would be {len(built.data)} bytes, more than --max-message-size "
                f"({limit} bytes)",
                limit,
            )
        results: list[dict[str, Any]] = []
        accepted: list[str] = []
        first_refused: Refusal | None = None
        for recipient in built.envelope.recipients:
            refusal = destination_refusal(recipient, ctx.routed) if live else None
            if refusal is None:
                accepted.append(recipient)
                results.append({"email": recipient, "status": "accepted"})
            else:
                first_refused = first_refused or refusal
                results.append(
                    {
                        "email": recipient,
                        "status": "refused",
                        "reason": refusal.detail,
                        "code": refusal.kind.value,
                    }
                )
        if first_refused is not None and (all_or_nothing or not accepted):
            raise first_refused
        envelope = Envelope(built.envelope.mail_from, tuple(accepted), built.envelope.mail_params)
        return results, envelope


def _answer(
    message_id: str,
    project: str,
    built: Built,
    results: list[dict[str, Any]],
    suppressed: dict[str, tuple[str, str]],
) -> dict[str, Any]:
    """The answer for a sent message: its recipients' results, those the pipeline found
    suppressed marked so."""
    for result in results:
        found = suppressed.get(result["email"].lower())
        if found is not None and result["status"] == "accepted":
            reason, scope = found
            result.update(
                status="suppressed",
                reason=f"on the {scope}'s suppression list ({reason}): not delivered",
                code=reason,
            )
    answer: dict[str, Any] = {"id": message_id, "project": project, "recipients": results}
    if built.tags:
        answer["tags"] = list(built.tags)
    if built.metadata:
        answer["metadata"] = built.metadata
    if built.send_at is not None:
        answer["send_at"] = built.send_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return answer


async def _project_of(request: Request, body: dict[str, Any], sender: Sender) -> str:
    """The project this request sends into (see the module's doc)."""
    principal = principal_of(request)
    given = body.get("project")
    if given is not None and not isinstance(given, str):
        raise InvalidInput("project must be a string", "project")
    if principal.key is not None:
        if given is not None and given != principal.key.project_id:
            raise InvalidInput(
                f"this API key sends into project {principal.key.project_id!r} only", "project"
            )
        return principal.key.project_id
    project = given or DEFAULT_PROJECT
    if principal.kind == "open" and await sender.live(project):
        raise InvalidInput(
            "no admin user exists (open mode): only capture projects take mail through the "
            "API without a send key",
            "project",
        )
    return project


def _peer(request: Request) -> Peer:
    client = request.client
    key = principal_of(request).key
    principal = f"api:{key.id}" if key is not None else f"user:{principal_of(request).username}"
    return Peer(client.host if client else "", client.port if client else 0, principal)


def routes(ctx: SendingContext) -> list[BaseRoute]:
    sender = Sender(ctx)

    async def with_idempotency(
        request: Request, project: str, raw: bytes, handler: Callable[[], Awaitable[Answer]]
    ) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return answer_response(await handler())
        if ctx.idempotency is None:
            raise InvalidInput(f"{HEADER} is not available on this server", HEADER)
        return await ctx.idempotency.run(
            project, key, request.url.path.encode() + b"\n" + raw, handler
        )

    async def one(request: Request, project: str, body: dict[str, Any]) -> Answer:
        try:
            return 200, await sender.send(project, body, _peer(request)), {}
        except PostroomError as exc:
            return await error_answer(request, exc)

    async def send_message(request: Request) -> Response:
        body = await json_body(request)
        project = await _project_of(request, body, sender)
        return await with_idempotency(
            request, project, await request.body(), lambda: one(request, project, body)
        )

    async def send_batch(request: Request) -> Response:
        body = await json_body(request)
        items = body.get("messages")
        if not isinstance(items, list) or not items:
            raise InvalidInput("messages must be a non-empty array of messages", "messages")
        if len(items) > MAX_BATCH:
            raise InvalidInput(f"messages: at most {MAX_BATCH} in one batch", "messages")
        unknown = set(body) - {"messages", "project"}
        if unknown:
            raise InvalidInput(f"unknown field {sorted(unknown)[0]!r}", sorted(unknown)[0])
        project = await _project_of(request, body, sender)

        async def run_batch() -> Answer:
            # Each message is built on its own (a bad one fails alone); the good ones go
            # through the pipeline together (Sender.send_built_many: one suppression query,
            # their signatures in one worker thread, one group commit), each still accepted
            # or refused on its own.
            peer = _peer(request)
            answers: list[Answer | None] = []
            built: list[tuple[Built, tuple[str, ...]]] = []
            slots: list[int] = []
            for index, value in enumerate(items):
                try:
                    if not isinstance(value, dict):
                        raise InvalidInput(f"messages[{index}] must be an object", "messages")
                    if "project" in value:
                        raise InvalidInput(
                            "project is given once for the batch", f"messages[{index}].project"
                        )
                    built.append((await sender.build(project, value), ()))
                except PostroomError as exc:
                    answers.append(await error_answer(request, exc))
                    continue
                slots.append(index)
                answers.append(None)
            if built:
                sent = await sender.send_built_many(project, built, peer)
                for index, outcome in zip(slots, sent, strict=True):
                    answers[index] = (
                        await error_answer(request, outcome)
                        if isinstance(outcome, PostroomError)
                        else (200, outcome, {})
                    )
            results = []
            for index, answer in enumerate(answers):
                assert answer is not None
                status, content, _ = answer
                results.append({"index": index, "status": status, **content})
            accepted = sum(1 for r in results if r["status"] == 200)
            return (
                200,
                {
                    "project": project,
                    "accepted": accepted,
                    "refused": len(results) - accepted,
                    "messages": results,
                },
                {},
            )

        return await with_idempotency(request, project, await request.body(), run_batch)

    return [
        Route("/api/v2/messages", send_message, methods=["POST"]),
        Route("/api/v2/messages/batch", send_batch, methods=["POST"]),
    ]
