"""Sending through the SES-compatible API: SES's request shapes turned into Postroom messages,
sent by the native API's Sender (api/native_send.py) through the HTTP send door into the
acceptance pipeline: verified identities, quotas, DKIM and the durable queue, as every door.

Shared by API v2 (JSON) and v1 (query): both hand over plain dictionaries of SES's field
names. A recipient that the MTA never delivers to refuses the whole message, as SES does.
FeedbackForwardingEmailAddress (v2) and ReturnPath (v1) become the envelope sender, so bounce
notices go there; like every envelope sender it must be a verified identity (else SES's
MailFromDomainNotVerifiedException). Not mapped yet: ConfigurationSetName (accepted and
ignored).
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, replace
from typing import Any

from postroom.api.native_message import Built, build, parse_address, raw_message
from postroom.api.native_send import Peer, Sender
from postroom.api.ses_errors import SesError, from_postroom
from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput, PostroomError
from postroom.core.sending import Template
from postroom.core.types import Envelope
from postroom.platform.email_templates import Rendered, TemplateService, render_parts

MAX_BULK = 50
BULK_STATUS = {
    "MessageRejected": "MESSAGE_REJECTED",
    "TooManyRequestsException": "ACCOUNT_THROTTLED",
    "Throttling": "ACCOUNT_THROTTLED",
    "NotFoundException": "TEMPLATE_NOT_FOUND",
    "BadRequestException": "INVALID_PARAMETER",
    "InvalidParameterValue": "INVALID_PARAMETER",
    "ServiceUnavailable": "TRANSIENT_FAILURE",
}


@dataclass
class SesSending:
    sender: Sender
    templates: TemplateService
    clock: Clock
    hostname: str


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"{field} must be a list", field)
    return value


def _pairs(value: Any, field: str) -> list[tuple[str, str]]:
    """[{Name, Value}, ...] as (name, value) pairs."""
    out = []
    for i, item in enumerate(_list(value, field)):
        if not isinstance(item, dict) or not isinstance(item.get("Name"), str):
            raise InvalidInput(f"{field}[{i}] needs Name and Value", field)
        out.append((item["Name"], str(item.get("Value", ""))))
    return out


def tags_of(value: Any, field: str = "EmailTags") -> list[str]:
    return [f"{name}:{tag}" if tag else name for name, tag in _pairs(value, field)]


def destination(value: Any) -> dict[str, list[Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("Destination must be a structure", "Destination")
    return {
        key: _list(value.get(name), f"Destination.{name}")
        for key, name in (("to", "ToAddresses"), ("cc", "CcAddresses"), ("bcc", "BccAddresses"))
    }


def _attachments(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(value, "Attachments")):
        if not isinstance(item, dict):
            raise InvalidInput(f"Attachments[{i}] must be a structure", "Attachments")
        entry: dict[str, Any] = {
            "filename": item.get("FileName"),
            "content": item.get("RawContent"),
        }
        if item.get("ContentType"):
            entry["content_type"] = item["ContentType"]
        if item.get("ContentId") and item.get("ContentDisposition", "ATTACHMENT") == "INLINE":
            entry["content_id"] = item["ContentId"]
        out.append(entry)
    return out


def fields_body(
    source: Any,
    dest: dict[str, list[Any]],
    reply_to: Any,
    subject: str,
    text: str,
    html: str,
    *,
    headers: Any = None,
    attachments: Any = None,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """A native send body from SES's fields."""
    if not source:
        raise InvalidInput("FromEmailAddress (Source) is required", "FromEmailAddress")
    body: dict[str, Any] = {
        "from": source,
        **dest,
        "reply_to": _list(reply_to, "ReplyToAddresses") or None,
        "subject": subject,
        "text": text or None,
        "html": html or None,
        "tags": tags or None,
    }
    pairs = _pairs(headers, "Headers")
    if pairs:
        body["headers"] = dict(pairs)
    if attachments:
        body["attachments"] = _attachments(attachments)
    return body


def template_data(value: Any, field: str = "TemplateData") -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a JSON string", field)
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise InvalidInput(f"{field} is not valid JSON: {exc}", field) from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{field} must be a JSON object", field)
    return data


class SesSender:
    def __init__(self, sending: SesSending) -> None:
        self.s = sending

    def build(self, body: dict[str, Any]) -> Built:
        return build(body, self.s.clock, self.s.hostname)

    def raw(self, data: Any, source: Any, destinations: list[Any], tags: list[str]) -> Built:
        if isinstance(data, str):
            try:
                data = base64.b64decode(data, validate=True)
            except ValueError:
                raise InvalidInput("RawMessage.Data must be base64", "RawMessage.Data") from None
        if not isinstance(data, bytes) or not data.strip():
            raise InvalidInput("RawMessage.Data is required", "RawMessage.Data")
        return raw_message(data, source or None, [destinations or None, None, None], tuple(tags))

    async def template(self, project: str, spec: dict[str, Any]) -> Template:
        """The template a Template structure names (TemplateName or TemplateArn) or holds
        (TemplateContent)."""
        content = spec.get("TemplateContent")
        if isinstance(content, dict):
            return Template(
                project,
                "inline",
                1,
                str(content.get("Subject") or ""),
                str(content.get("Text") or ""),
                str(content.get("Html") or ""),
                self.s.clock.now(),
            )
        name = spec.get("TemplateName") or str(spec.get("TemplateArn") or "").rpartition("/")[2]
        if not name:
            raise InvalidInput("TemplateName is required", "TemplateName")
        return await asyncio.to_thread(self.s.templates.get, project, name)

    async def send(self, project: str, built: Built, peer: Peer) -> str:
        answer = await self.s.sender.send_built(project, built, peer, all_or_nothing=True)
        message_id: str = answer["id"]
        return message_id


def with_return_path(built: Built, value: Any, field: str) -> Built:
    """`built` with `value` (FeedbackForwardingEmailAddress, ReturnPath) as its envelope
    sender, when given: bounce notices go to the envelope sender."""
    if value is None or value == "":
        return built
    address = parse_address(value, field).addr_spec
    envelope = built.envelope
    return replace(built, envelope=Envelope(address, envelope.recipients, envelope.mail_params))


def rendered_body(
    rendered: Rendered, source: Any, dest: dict[str, list[Any]], reply_to: Any, **extra: Any
) -> dict[str, Any]:
    return fields_body(
        source, dest, reply_to, rendered.subject, rendered.text, rendered.html, **extra
    )


async def send_bulk(
    ses: SesSender, project: str, request: dict[str, Any], peer: Peer, version: int
) -> list[dict[str, Any]]:
    """SendBulkEmail: one message per entry, each with its own result."""
    entries = _list(request.get("BulkEmailEntries"), "BulkEmailEntries")
    if not entries:
        raise InvalidInput("BulkEmailEntries is required", "BulkEmailEntries")
    if len(entries) > MAX_BULK:
        raise InvalidInput(f"at most {MAX_BULK} BulkEmailEntries in one call", "BulkEmailEntries")
    content = request.get("DefaultContent")
    spec = content.get("Template") if isinstance(content, dict) else None
    if not isinstance(spec, dict):
        raise InvalidInput("DefaultContent.Template is required", "DefaultContent")
    template = await ses.template(project, spec)
    defaults = template_data(spec.get("TemplateData"))
    default_tags = tags_of(request.get("DefaultEmailTags"), "DefaultEmailTags")
    source = request.get("FromEmailAddress")

    async def one(entry: Any) -> dict[str, Any]:
        try:
            if not isinstance(entry, dict):
                raise InvalidInput("a BulkEmailEntry must be a structure", "BulkEmailEntries")
            replacement = entry.get("ReplacementEmailContent") or {}
            data = dict(defaults)
            if isinstance(replacement, dict):
                inner = replacement.get("ReplacementTemplate") or {}
                data.update(template_data(inner.get("ReplacementTemplateData")))
            rendered = render_parts(template, data, "TemplateData")
            tags = default_tags + tags_of(entry.get("ReplacementTags"), "ReplacementTags")
            headers = _pairs(spec.get("Headers"), "Headers") + _pairs(
                entry.get("ReplacementHeaders"), "ReplacementHeaders"
            )
            body = rendered_body(
                rendered,
                source,
                destination(entry.get("Destination")),
                request.get("ReplyToAddresses"),
                headers=[{"Name": n, "Value": v} for n, v in headers],
                tags=tags,
            )
            built = with_return_path(
                ses.build(body),
                request.get("FeedbackForwardingEmailAddress"),
                "FeedbackForwardingEmailAddress",
            )
            message_id = await ses.send(project, built, peer)
        except PostroomError as exc:
            error = from_postroom(exc, version)
            status = BULK_STATUS.get(error.code, "FAILED")
            if (
                error.code in ("TooManyRequestsException", "Throttling")
                and "Daily" in error.message
            ):
                status = "ACCOUNT_DAILY_QUOTA_EXCEEDED"
            return {"Status": status, "Error": error.message}
        return {"Status": "SUCCESS", "MessageId": message_id}

    return list(await asyncio.gather(*(one(entry) for entry in entries)))


__all__ = ["MAX_BULK", "SesError", "SesSender", "SesSending", "send_bulk", "with_return_path"]
