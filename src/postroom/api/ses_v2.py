"""Amazon SES API v2 (`sesv2`, rest-json) on Postroom: sending, identities, templates and the
account's quota, the suppression list (the project's, suppression/service.py). Errors: the SES
name in `x-amzn-ErrorType`, `{"message"}` in the body, SES's HTTP status (api/ses_errors.py).
Configuration sets and their event destinations: api/ses_config_sets.py.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from postroom.api import ses_config_sets
from postroom.api.ses_context import SesApi, caller, peer
from postroom.api.ses_errors import SesError, from_postroom
from postroom.api.ses_identities import Identity
from postroom.api.ses_send import (
    destination,
    fields_body,
    rendered_body,
    send_bulk,
    tags_of,
    template_data,
    with_return_path,
)
from postroom.core.errors import InvalidInput, PostroomError
from postroom.core.suppression import SuppressionQuery, check_reason
from postroom.platform.email_templates import render_parts

Handler = Callable[[Request], Awaitable[Response]]


def error_response(error: SesError) -> JSONResponse:
    headers = {"x-amzn-ErrorType": error.code}
    if error.retry_after is not None or error.status in (429, 503):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after or 1)))
    return JSONResponse({"message": error.message}, status_code=error.status, headers=headers)


def _handled(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except PostroomError as exc:
            return error_response(from_postroom(exc, 2))

    return wrapped


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidInput("the request body is not valid JSON", "body") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object", "body")
    return body


def _identity(identity: Identity) -> dict[str, Any]:
    info: dict[str, Any] = {
        "IdentityType": identity.kind,
        "VerifiedForSendingStatus": identity.verified,
        "VerificationStatus": "SUCCESS" if identity.verified else "PENDING",
    }
    if identity.kind == "DOMAIN":
        info["DkimAttributes"] = {
            "SigningEnabled": True,
            "Status": "SUCCESS" if identity.verified else "PENDING",
            "Tokens": list(identity.selectors),
            "SigningAttributesOrigin": "AWS_SES",
        }
    return info


def routes(api: SesApi) -> list[BaseRoute]:
    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def send_email(request: Request) -> Response:
        body = await _body(request)
        project = caller(request).project
        content = body.get("Content")
        if not isinstance(content, dict) or not content:
            raise InvalidInput("Content is required (Simple, Raw or Template)", "Content")
        tags = tags_of(body.get("EmailTags"))
        chosen = await api.sender.configuration_set(project, body.get("ConfigurationSetName"), 2)
        if chosen is not None:
            tags.append(chosen)
        dest = destination(body.get("Destination"))
        source = body.get("FromEmailAddress")
        if isinstance(content.get("Raw"), dict):
            recipients = dest.get("to", []) + dest.get("cc", []) + dest.get("bcc", [])
            built = api.sender.raw(content["Raw"].get("Data"), source, recipients, tags)
        elif isinstance(content.get("Template"), dict):
            spec = content["Template"]
            template = await api.sender.template(project, spec)
            rendered = render_parts(
                template, template_data(spec.get("TemplateData")), "TemplateData"
            )
            built = api.sender.build(
                rendered_body(
                    rendered,
                    source,
                    dest,
                    body.get("ReplyToAddresses"),
                    headers=spec.get("Headers"),
                    attachments=spec.get("Attachments"),
                )
            )
        elif isinstance(content.get("Simple"), dict):
            simple = content["Simple"]
            subject = (simple.get("Subject") or {}).get("Data", "")
            parts = simple.get("Body") or {}
            built = api.sender.build(
                fields_body(
                    source,
                    dest,
                    body.get("ReplyToAddresses"),
                    subject,
                    (parts.get("Text") or {}).get("Data", ""),
                    (parts.get("Html") or {}).get("Data", ""),
                    headers=simple.get("Headers"),
                    attachments=simple.get("Attachments"),
                )
            )
        else:
            raise InvalidInput("Content needs Simple, Raw or Template", "Content")
        built = with_return_path(
            built, body.get("FeedbackForwardingEmailAddress"), "FeedbackForwardingEmailAddress"
        )
        message_id = await api.sender.send(project, built, peer(request), tags)
        return JSONResponse({"MessageId": message_id})

    async def send_bulk_email(request: Request) -> Response:
        body = await _body(request)
        results = await send_bulk(api.sender, caller(request).project, body, peer(request), 2)
        return JSONResponse({"BulkEmailEntryResults": results})

    async def get_account(request: Request) -> Response:
        project = caller(request).project
        usage = await run(api.service.usage, project)
        found = await run(api.service.get_project, project)
        mode = found.mode
        return JSONResponse(
            {
                "SendQuota": {
                    "Max24HourSend": float(usage.daily_quota or -1),
                    "MaxSendRate": float(usage.rate_limit or -1),
                    "SentLast24Hours": float(usage.sent_24h),
                },
                # the reputation guard's pause, an admin's suspension
                "SendingEnabled": found.paused is None and found.suspended is None,
                "ProductionAccessEnabled": mode == "live",
                # SES's words: SHUTDOWN when the account may no longer send
                "EnforcementStatus": "HEALTHY" if found.suspended is None else "SHUTDOWN",
                "DedicatedIpAutoWarmupEnabled": False,
            }
        )

    async def identities(request: Request) -> Response:
        project = caller(request).project
        if request.method == "POST" and request.url.path.endswith("/identities"):
            body = await _body(request)
            identity, existed = await api.identities.create(project, body.get("EmailIdentity"))
            if identity.kind == "DOMAIN" and existed:
                raise SesError(
                    "AlreadyExistsException", f"Email identity {identity.name} already exists."
                )
            return JSONResponse(_identity(identity))
        body = await _body(request) if request.method == "POST" else {}
        items = await run(api.identities.list, project)
        size = body.get("PageSize") or request.query_params.get("PageSize") or 1000
        token = body.get("NextToken") or request.query_params.get("NextToken") or "0"
        start, size = _page(token, size)
        page = items[start : start + size]
        answer: dict[str, Any] = {
            "EmailIdentities": [
                {
                    "IdentityType": i.kind,
                    "IdentityName": i.name,
                    "SendingEnabled": i.verified,
                    "VerificationStatus": "SUCCESS" if i.verified else "PENDING",
                }
                for i in page
            ]
        }
        if start + size < len(items):
            answer["NextToken"] = str(start + size)
        return JSONResponse(answer)

    async def identity(request: Request) -> Response:
        project = caller(request).project
        name = request.path_params["identity"]
        if request.method == "DELETE":
            await run(api.identities.delete, project, name)
            return JSONResponse({})
        return JSONResponse(_identity(await run(api.identities.get, project, name)))

    async def templates(request: Request) -> Response:
        project = caller(request).project
        if request.method == "POST":
            body = await _body(request)
            content = body.get("TemplateContent") or {}
            if not isinstance(content, dict):
                raise InvalidInput("TemplateContent must be a structure", "TemplateContent")
            try:
                await run(
                    lambda: api.templates.save(
                        project,
                        body.get("TemplateName") or "",
                        content.get("Subject") or "",
                        content.get("Text") or "",
                        content.get("Html") or "",
                        create=True,
                    )
                )
            except InvalidInput as exc:
                if "already exists" in str(exc):
                    raise SesError("AlreadyExistsException", str(exc)) from None
                raise
            return JSONResponse({})
        items = await run(api.templates.list, project)
        start, size = _page(
            request.query_params.get("NextToken") or "0",
            request.query_params.get("PageSize") or 100,
        )
        answer: dict[str, Any] = {
            "TemplatesMetadata": [
                {"TemplateName": t.name, "CreatedTimestamp": t.created.timestamp()}
                for t in items[start : start + size]
            ]
        }
        if start + size < len(items):
            answer["NextToken"] = str(start + size)
        return JSONResponse(answer)

    async def template(request: Request) -> Response:
        project = caller(request).project
        name = request.path_params["name"]
        if request.method == "DELETE":
            await run(api.templates.delete, project, name)
            return JSONResponse({})
        if request.method == "PUT":
            body = await _body(request)
            content = body.get("TemplateContent") or {}
            await run(
                lambda: api.templates.save(
                    project,
                    name,
                    content.get("Subject") or "",
                    content.get("Text") or "",
                    content.get("Html") or "",
                    create=False,
                )
            )
            return JSONResponse({})
        found = await run(api.templates.get, project, name)
        return JSONResponse(
            {
                "TemplateName": found.name,
                "TemplateContent": {
                    "Subject": found.subject,
                    "Text": found.text,
                    "Html": found.html,
                },
            }
        )

    async def render(request: Request) -> Response:
        project = caller(request).project
        body = await _body(request)
        found = await run(api.templates.get, project, request.path_params["name"])
        rendered = render_parts(found, template_data(body.get("TemplateData")), "TemplateData")
        mime = api.sender.build(
            fields_body(
                "template-preview@postroom.invalid",
                {"to": ["recipient@postroom.invalid"]},
                None,
                rendered.subject,
                rendered.text,
                rendered.html,
            )
        )
        return JSONResponse({"RenderedTemplate": mime.data.decode("utf-8", "replace")})

    async def suppression(request: Request) -> Response:
        """PutSuppressedDestination (PUT) and ListSuppressedDestinations (GET)."""
        project = caller(request).project
        if request.method == "PUT":
            body = await _body(request)
            given = body.get("Reason")
            if given not in ("BOUNCE", "COMPLAINT"):
                raise InvalidInput("Reason must be BOUNCE or COMPLAINT", "Reason")
            reason = str(given).lower()
            await run(
                lambda: api.suppressions.add(
                    project, body.get("EmailAddress"), reason, detail="SES API"
                )
            )
            return JSONResponse({})
        params = request.query_params
        reasons = {r.lower() for r in params.getlist("Reason")}
        if reasons - {"bounce", "complaint"}:
            raise InvalidInput("Reason must be BOUNCE or COMPLAINT", "Reasons")
        start, end = (
            _when(params.get("StartDate"), "StartDate"),
            _when(params.get("EndDate"), "EndDate"),
        )
        size = _page("0", params.get("PageSize") or 100)[1]
        only = check_reason(next(iter(reasons))) if len(reasons) == 1 else None
        query = SuppressionQuery(reason=only, after=params.get("NextToken"), limit=size)
        page = await run(api.suppressions.page, project, query)
        entries = [
            e
            for e in page.entries
            if (not reasons or e.reason in reasons)
            and (start is None or e.created >= start)
            and (end is None or e.created <= end)
        ]
        answer: dict[str, Any] = {
            "SuppressedDestinationSummaries": [
                {
                    "EmailAddress": e.address,
                    "Reason": e.reason.upper(),
                    "LastUpdateTime": e.created.timestamp(),
                }
                for e in entries
            ]
        }
        if page.next is not None:
            answer["NextToken"] = page.next
        return JSONResponse(answer)

    async def suppressed(request: Request) -> Response:
        project = caller(request).project
        address = request.path_params["address"]
        if request.method == "DELETE":
            await run(api.suppressions.get, project, address)  # NotFound when absent
            await run(api.suppressions.remove, project, address)
            return JSONResponse({})
        entry = await run(api.suppressions.get, project, address)
        return JSONResponse(
            {
                "SuppressedDestination": {
                    "EmailAddress": entry.address,
                    "Reason": entry.reason.upper(),
                    "LastUpdateTime": entry.created.timestamp(),
                    "Attributes": {"MessageId": "", "FeedbackId": str(entry.event_id or "")},
                }
            }
        )

    table: list[tuple[str, list[str], Handler]] = [
        ("/v2/email/suppression/addresses", ["GET", "PUT"], suppression),
        ("/v2/email/suppression/addresses/{address}", ["GET", "DELETE"], suppressed),
        ("/v2/email/outbound-emails", ["POST"], send_email),
        ("/v2/email/outbound-bulk-emails", ["POST"], send_bulk_email),
        ("/v2/email/account", ["GET"], get_account),
        ("/v2/email/identities", ["GET", "POST"], identities),
        ("/v2/email/list-identities", ["POST"], identities),
        ("/v2/email/identities/{identity}", ["GET", "DELETE"], identity),
        ("/v2/email/templates", ["GET", "POST"], templates),
        ("/v2/email/templates/{name}", ["GET", "PUT", "DELETE"], template),
        ("/v2/email/templates/{name}/render", ["POST"], render),
        *ses_config_sets.routes(api, _body, _page),
    ]
    return [Route(path, _handled(handler), methods=methods) for path, methods, handler in table]


def _when(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        if value.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(value), UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field} is not a time", field) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _page(token: Any, size: Any) -> tuple[int, int]:
    try:
        start, count = int(token), int(size)
    except (TypeError, ValueError):
        raise InvalidInput("NextToken or PageSize is not valid", "NextToken") from None
    if start < 0 or count < 1:
        raise InvalidInput("NextToken or PageSize is not valid", "NextToken")
    return start, min(count, 1000)
