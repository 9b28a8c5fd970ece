"""Sending through the SES-compatible API: SES's request shapes turned into Postroom messages,
sent by the native API's Sender (api/native_send.py) through the HTTP send door into the
acceptance pipeline: verified identities, quotas, DKIM and the durable queue, as every door.

Shared by API v2 (JSON) and v1 (query): both hand over plain dictionaries of SES's field
names. A recipient that the MTA never delivers to refuses the whole message, as SES does.
FeedbackForwardingEmailAddress (v2) and ReturnPath (v1) become the envelope sender, so bounce
notices go there; like every envelope sender it must be a verified identity (else SES's
MailFromDomainNotVerifiedException).

EmailTags (v2) and Tags (v1) are checked as SES checks them (ASCII letters, digits, `_` and
`-`, at most 256 characters) and stored with the message as `name:value` tags (not written
into the message); webhook payloads show them in `mail.tags` as `{"name": ["value"]}`.
ConfigurationSetName must name one of the project's configuration sets (else v2
NotFoundException, v1 ConfigurationSetDoesNotExist), whose sending is enabled (else v2
SendingPausedException, v1 ConfigurationSetSendingPausedException); the message gets the tag
`ses:configuration-set:NAME`, which routes its events to the set's event destinations
(core/config_sets.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from dataclasses import dataclass, replace
from typing import Any

from postroom.api.native_message import Built, build, parse_address, raw_message
from postroom.api.native_send import Peer, Sender
from postroom.api.ses_errors import SesError, from_postroom
from postroom.core.clock import Clock
from postroom.core.config_sets import set_tag
from postroom.core.errors import InvalidInput, NotFound, PostroomError
from postroom.core.sending import Template
from postroom.core.types import Envelope
from postroom.platform.email_templates import Rendered, TemplateService, render_parts
from postroom.storage.config_sets import SqlConfigSetStore

MAX_BULK = 50
MAX_EMAIL_TAGS = 50
_TAG_TEXT = re.compile(r"[A-Za-z0-9_-]{0,256}")
BULK_STATUS = {
    "MessageRejected": "MESSAGE_REJECTED",
    "TooManyRequestsException": "ACCOUNT_THROTTLED",
    "Throttling": "ACCOUNT_THROTTLED",
    "NotFoundException": "TEMPLATE_NOT_FOUND",
    "BadRequestException": "INVALID_PARAMETER",
    "InvalidParameterValue": "INVALID_PARAMETER",
    "ServiceUnavailable": "TRANSIENT_FAILURE",
    "AccountSuspendedException": "ACCOUNT_SUSPENDED",
}


@dataclass
class SesSending:
    sender: Sender
    templates: TemplateService
    clock: Clock
    hostname: str
    configuration_sets: SqlConfigSetStore | None = None


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
    """Message tags as Postroom keeps them (`name:value`, or `name` for an empty value),
    checked as SES checks them."""
    pairs = _pairs(value, field)
    if len(pairs) > MAX_EMAIL_TAGS:
        raise InvalidInput(f"{field}: at most {MAX_EMAIL_TAGS} tags", field)
    for name, tag in pairs:
        for part, text in (("Name", name), ("Value", tag)):
            if not _TAG_TEXT.fullmatch(text) or (part == "Name" and not text):
                raise InvalidInput(
                    f"{field}: the tag {part.lower()} {text!r} must be 1 to 256 ASCII letters, "
                    "digits, '_' or '-'"
                    if part == "Name"
                    else f"{field}: the tag value {text!r} may hold only ASCII letters, digits, "
                    "'_' and '-' (at most 256)",
                    field,
                )
    return [f"{name}:{tag}" if tag else name for name, tag in pairs]


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

    async def configuration_set(self, project: str, name: Any, version: int) -> str | None:
        """The tag of the configuration set `name` (ConfigurationSetName), None when none is
        given; SES's errors when the project has no such set or its sending is disabled."""
        if name is None or name == "":
            return None
        if not isinstance(name, str):
            raise InvalidInput("ConfigurationSetName must be a string", "ConfigurationSetName")
        store = self.s.configuration_sets
        try:
            if store is None:
                raise NotFound(f"Configuration set <{name}> does not exist.")
            found = await asyncio.to_thread(store.get, project, name)
        except NotFound:
            if version == 1:
                raise SesError(
                    "ConfigurationSetDoesNotExist", f"Configuration set <{name}> does not exist."
                ) from None
            raise SesError(
                "NotFoundException", f"Configuration set <{name}> does not exist.", 404
            ) from None
        if not found.sending_enabled:
            code = (
                "SendingPausedException"
                if version == 2
                else "ConfigurationSetSendingPausedException"
            )
            raise SesError(code, f"Sending is disabled for configuration set <{found.name}>.", 400)
        return set_tag(found.name)

    async def send(
        self, project: str, built: Built, peer: Peer, tags: list[str] | tuple[str, ...] = ()
    ) -> str:
        """Send `built` whole (one refused recipient refuses it); `tags` are stored with it."""
        answer = await self.s.sender.send_built(
            project, built, peer, all_or_nothing=True, tags=tuple(tags)
        )
        message_id: str = answer["id"]
        return message_id

    async def send_many(
        self, project: str, messages: list[tuple[Built, tuple[str, ...]]], peer: Peer
    ) -> list[str | PostroomError]:
        """`send` for the (message, tags) pairs of one request, each sent whole or refused on
        its own: each one's id, or the error that refused it."""
        answers = await self.s.sender.send_built_many(project, messages, peer, all_or_nothing=True)
        return [a if isinstance(a, PostroomError) else str(a["id"]) for a in answers]


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
    chosen = await ses.configuration_set(project, request.get("ConfigurationSetName"), version)
    if chosen is not None:
        default_tags.append(chosen)
    source = request.get("FromEmailAddress")
    shared_headers = _pairs(spec.get("Headers"), "Headers")

    def failed(exc: PostroomError) -> dict[str, Any]:
        error = from_postroom(exc, version)
        status = BULK_STATUS.get(error.code, "FAILED")
        if error.code in ("TooManyRequestsException", "Throttling") and "Daily" in error.message:
            status = "ACCOUNT_DAILY_QUOTA_EXCEEDED"
        return {"Status": status, "Error": error.message}

    def built(entry: Any) -> tuple[Built, tuple[str, ...]]:
        """An entry's message (rendered with its data) and tags."""
        if not isinstance(entry, dict):
            raise InvalidInput("a BulkEmailEntry must be a structure", "BulkEmailEntries")
        replacement = entry.get("ReplacementEmailContent") or {}
        data = dict(defaults)
        if isinstance(replacement, dict):
            inner = replacement.get("ReplacementTemplate") or {}
            data.update(template_data(inner.get("ReplacementTemplateData")))
        rendered = render_parts(template, data, "TemplateData")
        tags = default_tags + tags_of(entry.get("ReplacementTags"), "ReplacementTags")
        headers = shared_headers + _pairs(entry.get("ReplacementHeaders"), "ReplacementHeaders")
        body = rendered_body(
            rendered,
            source,
            destination(entry.get("Destination")),
            request.get("ReplyToAddresses"),
            headers=[{"Name": n, "Value": v} for n, v in headers],
        )
        message = with_return_path(
            ses.build(body),
            request.get("FeedbackForwardingEmailAddress"),
            "FeedbackForwardingEmailAddress",
        )
        return message, tuple(tags)

    # Each entry is built on its own (a bad one fails alone); the good ones are sent together:
    # checked, signed and committed as one request, each still accepted or refused on its own.
    results: list[dict[str, Any]] = []
    messages: list[tuple[Built, tuple[str, ...]]] = []
    slots: list[int] = []
    for entry in entries:
        try:
            messages.append(built(entry))
        except PostroomError as exc:
            results.append(failed(exc))
            continue
        slots.append(len(results))
        results.append({})
    if messages:
        answers = await ses.send_many(project, messages, peer)
        for slot, answer in zip(slots, answers, strict=True):
            results[slot] = (
                failed(answer)
                if isinstance(answer, PostroomError)
                else {"Status": "SUCCESS", "MessageId": answer}
            )
    return results


__all__ = ["MAX_BULK", "SesError", "SesSender", "SesSending", "send_bulk", "with_return_path"]
