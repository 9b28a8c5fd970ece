"""Amazon SES API v1 (`ses`, the query protocol: form-encoded `Action=...` posts, XML
answers) on Postroom: SendEmail, SendRawEmail, SendTemplatedEmail, GetSendQuota,
GetSendStatistics, VerifyEmailIdentity, VerifyDomainIdentity, ListIdentities and
GetIdentityVerificationAttributes. Errors are SES's `ErrorResponse` documents
(api/ses_errors.py). Only requests that carry a valid SigV4 signature get here (api/ses_app.py).
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response

from postroom.api.ses_context import SesApi, caller, peer
from postroom.api.ses_errors import NAMESPACE, SesError, from_postroom
from postroom.api.ses_send import (
    MAX_EMAIL_TAGS,
    fields_body,
    rendered_body,
    tags_of,
    template_data,
    with_return_path,
)
from postroom.core.errors import InvalidInput, PostroomError
from postroom.platform.email_templates import render_parts

VERSION = "2010-12-01"
Params = dict[str, str]
Action = Callable[[Request, Params], Awaitable[str]]
STATISTICS_STEP = 15 * 60  # SES reports sends in 15-minute data points


def _request_id() -> str:
    return secrets.token_hex(16)


def _xml(action: str, result: str) -> Response:
    body = (
        f'<{action}Response xmlns="{NAMESPACE}"><{action}Result>{result}</{action}Result>'
        f"<ResponseMetadata><RequestId>{_request_id()}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )
    return Response(body, media_type="text/xml")


def error_response(error: SesError) -> Response:
    kind = "Sender" if error.sender_fault else "Receiver"
    body = (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{_request_id()}</RequestId></ErrorResponse>"
    )
    headers = {}
    if error.retry_after is not None or error.status == 503:
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after or 1)))
    return Response(body, status_code=error.status, media_type="text/xml", headers=headers)


def members(params: Params, prefix: str) -> list[str]:
    """`prefix.member.1`, `prefix.member.2`, ... in order."""
    found: list[tuple[int, str]] = []
    head = f"{prefix}.member."
    for key, value in params.items():
        if key.startswith(head) and key[len(head) :].isdigit():
            found.append((int(key[len(head) :]), value))
    return [value for _, value in sorted(found)]


def _tags(params: Params) -> list[str]:
    pairs = []
    for index in range(1, MAX_EMAIL_TAGS + 2):
        name = params.get(f"Tags.member.{index}.Name")
        if name is None:
            break
        pairs.append({"Name": name, "Value": params.get(f"Tags.member.{index}.Value", "")})
    return tags_of(pairs, "Tags")


def _destination(params: Params) -> dict[str, list[Any]]:
    return {
        key: list(members(params, f"Destination.{name}"))
        for key, name in (("to", "ToAddresses"), ("cc", "CcAddresses"), ("bcc", "BccAddresses"))
    }


def _member_xml(values: list[str]) -> str:
    return "".join(f"<member>{escape(v)}</member>" for v in values)


def handlers(api: SesApi) -> dict[str, Action]:
    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def _send_tags(project: str, params: Params) -> list[str]:
        """Tags.member.N and the configuration set's tag (checked: SES's v1 errors)."""
        tags = _tags(params)
        chosen = await api.sender.configuration_set(project, params.get("ConfigurationSetName"), 1)
        return tags if chosen is None else [*tags, chosen]

    async def send_email(request: Request, params: Params) -> str:
        built = api.sender.build(
            fields_body(
                params.get("Source"),
                _destination(params),
                members(params, "ReplyToAddresses"),
                params.get("Message.Subject.Data", ""),
                params.get("Message.Body.Text.Data", ""),
                params.get("Message.Body.Html.Data", ""),
            )
        )
        built = with_return_path(built, params.get("ReturnPath"), "ReturnPath")
        project = caller(request).project
        tags = await _send_tags(project, params)
        message_id = await api.sender.send(project, built, peer(request), tags)
        return f"<MessageId>{message_id}</MessageId>"

    async def send_raw_email(request: Request, params: Params) -> str:
        project = caller(request).project
        tags = await _send_tags(project, params)
        built = api.sender.raw(
            params.get("RawMessage.Data", ""),
            params.get("Source"),
            members(params, "Destinations"),
            tags,
        )
        message_id = await api.sender.send(project, built, peer(request), tags)
        return f"<MessageId>{message_id}</MessageId>"

    async def send_templated_email(request: Request, params: Params) -> str:
        project = caller(request).project
        name = params.get("Template") or params.get("TemplateArn", "").rpartition("/")[2]
        template = await api.sender.template(project, {"TemplateName": name})
        rendered = render_parts(template, template_data(params.get("TemplateData")), "TemplateData")
        built = api.sender.build(
            rendered_body(
                rendered,
                params.get("Source"),
                _destination(params),
                members(params, "ReplyToAddresses"),
            )
        )
        built = with_return_path(built, params.get("ReturnPath"), "ReturnPath")
        tags = await _send_tags(project, params)
        message_id = await api.sender.send(project, built, peer(request), tags)
        return f"<MessageId>{message_id}</MessageId>"

    async def get_send_quota(request: Request, params: Params) -> str:
        usage = await run(api.service.usage, caller(request).project)
        return (
            f"<Max24HourSend>{float(usage.daily_quota or -1)}</Max24HourSend>"
            f"<MaxSendRate>{float(usage.rate_limit or -1)}</MaxSendRate>"
            f"<SentLast24Hours>{float(usage.sent_24h)}</SentLast24Hours>"
        )

    async def get_send_statistics(request: Request, params: Params) -> str:
        since = api.clock.now() - timedelta(days=1)
        points = await run(api.store.send_points, caller(request).project, since, STATISTICS_STEP)
        items = "".join(
            "<member>"
            f"<Timestamp>{datetime.fromtimestamp(start, UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
            f"</Timestamp><DeliveryAttempts>{count}</DeliveryAttempts><Bounces>0</Bounces>"
            "<Complaints>0</Complaints><Rejects>0</Rejects></member>"
            for start, count in points
        )
        return f"<SendDataPoints>{items}</SendDataPoints>"

    async def verify_email_identity(request: Request, params: Params) -> str:
        address = params.get("EmailAddress", "")
        await api.identities.create(caller(request).project, address)
        return ""

    async def verify_domain_identity(request: Request, params: Params) -> str:
        identity, _ = await api.identities.create(caller(request).project, params.get("Domain", ""))
        if identity.kind != "DOMAIN":
            raise InvalidInput("Domain must be a domain name", "Domain")
        return f"<VerificationToken>{escape(identity.token)}</VerificationToken>"

    async def list_identities(request: Request, params: Params) -> str:
        items = await run(api.identities.list, caller(request).project)
        kind = params.get("IdentityType", "")
        if kind not in ("", "EmailAddress", "Domain"):
            raise InvalidInput("IdentityType must be EmailAddress or Domain", "IdentityType")
        wanted = {"EmailAddress": "EMAIL_ADDRESS", "Domain": "DOMAIN"}.get(kind)
        names = [i.name for i in items if wanted is None or i.kind == wanted]
        try:
            start = int(params.get("NextToken", "0") or 0)
            size = int(params.get("MaxItems", "1000") or 1000)
        except ValueError:
            raise InvalidInput("NextToken and MaxItems must be numbers", "MaxItems") from None
        page = names[start : start + max(1, min(size, 1000))]
        more = start + len(page) < len(names)
        token = f"<NextToken>{start + len(page)}</NextToken>" if more else ""
        return f"<Identities>{_member_xml(page)}</Identities>{token}"

    async def get_verification_attributes(request: Request, params: Params) -> str:
        project = caller(request).project
        entries = []
        for name in members(params, "Identities"):
            try:
                identity = await run(api.identities.get, project, name)
            except PostroomError:
                continue
            status = "Success" if identity.verified else "Pending"
            token = (
                f"<VerificationToken>{escape(identity.token)}</VerificationToken>"
                if identity.kind == "DOMAIN"
                else ""
            )
            entries.append(
                f"<entry><key>{escape(name)}</key><value><VerificationStatus>{status}"
                f"</VerificationStatus>{token}</value></entry>"
            )
        return f"<VerificationAttributes>{''.join(entries)}</VerificationAttributes>"

    return {
        "SendEmail": send_email,
        "SendRawEmail": send_raw_email,
        "SendTemplatedEmail": send_templated_email,
        "GetSendQuota": get_send_quota,
        "GetSendStatistics": get_send_statistics,
        "VerifyEmailIdentity": verify_email_identity,
        "VerifyDomainIdentity": verify_domain_identity,
        "ListIdentities": list_identities,
        "GetIdentityVerificationAttributes": get_verification_attributes,
    }


def endpoint(api: SesApi) -> Callable[[Request], Awaitable[Response]]:
    """POST /: the query protocol's one endpoint."""
    actions = handlers(api)

    async def serve(request: Request) -> Response:
        try:
            text = (await request.body()).decode("utf-8")
        except UnicodeDecodeError:
            return error_response(SesError("MalformedQueryString", "the body is not UTF-8"))
        params = dict(parse_qsl(text, keep_blank_values=True, max_num_fields=10_000))
        params.update(dict(parse_qsl(request.url.query, keep_blank_values=True)))
        action = params.get("Action", "")
        handler = actions.get(action)
        if handler is None:
            return error_response(
                SesError(
                    "InvalidAction",
                    f"The action {action or '(none)'} is not valid for this endpoint.",
                )
            )
        try:
            return _xml(action, await handler(request, params))
        except PostroomError as exc:
            return error_response(from_postroom(exc, 1))

    return serve
