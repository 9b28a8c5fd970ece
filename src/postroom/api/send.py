"""POST /api/v1/send: a Mailpit-shaped JSON body turned into a MIME message and an envelope."""

from __future__ import annotations

import base64
import binascii
import mimetypes
from email.headerregistry import Address as EmailAddress
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import format_datetime, make_msgid
from typing import Any

from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput
from postroom.core.types import Envelope


def _require_str(value: Any, field: str, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise InvalidInput(f"{field} is required", field)
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field)
    if required and not value.strip():
        raise InvalidInput(f"{field} must not be empty", field)
    if ("\r" in value or "\n" in value) and field not in ("Text", "HTML"):
        raise InvalidInput(f"{field} must not contain line breaks", field)
    return value


def _email(value: Any, field: str) -> EmailAddress:
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be an object with Email and optional Name", field)
    email = _require_str(value.get("Email"), f"{field}.Email", required=True).strip()
    name = _require_str(value.get("Name"), f"{field}.Name")
    return _parse_address(email, f"{field}.Email", name)


def _parse_address(email: str, field: str, name: str = "") -> EmailAddress:
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or " " in email or "<" in email or ">" in email:
        raise InvalidInput(f"{field}: {email!r} is not a valid email address", field)
    try:
        return EmailAddress(display_name=name, username=local, domain=domain)
    except (ValueError, IndexError) as exc:
        raise InvalidInput(
            f"{field}: {email!r} is not a valid email address ({exc})", field
        ) from None


def _address_list(value: Any, field: str) -> list[EmailAddress]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"{field} must be an array", field)
    return [_email(item, f"{field}[{i}]") for i, item in enumerate(value)]


def build_message(body: Any, clock: Clock, hostname: str) -> tuple[Envelope, bytes]:
    """Validate the request body; return the envelope and the message bytes (CRLF)."""
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object", "body")
    sender = _email(body.get("From"), "From")
    to = _address_list(body.get("To"), "To")
    cc = _address_list(body.get("Cc"), "Cc")
    reply_to = _address_list(body.get("ReplyTo"), "ReplyTo")
    bcc_raw = body.get("Bcc") or []
    if not isinstance(bcc_raw, list) or not all(isinstance(b, str) for b in bcc_raw):
        raise InvalidInput("Bcc must be an array of email address strings", "Bcc")
    bcc = [_parse_address(b.strip(), f"Bcc[{i}]") for i, b in enumerate(bcc_raw)]
    if not (to or cc or bcc):
        raise InvalidInput("at least one recipient is required in To, Cc or Bcc", "To")
    subject = _require_str(body.get("Subject"), "Subject")
    text = _require_str(body.get("Text"), "Text")
    html = _require_str(body.get("HTML"), "HTML")
    tags = body.get("Tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidInput("Tags must be an array of strings", "Tags")
    headers = body.get("Headers") or {}
    if not isinstance(headers, dict):
        raise InvalidInput("Headers must be an object of name to string value", "Headers")

    msg = EmailMessage()
    msg["From"] = sender
    if to:
        msg["To"] = to
    if cc:
        msg["Cc"] = cc
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(clock.now())
    msg["Message-ID"] = make_msgid(domain=hostname)
    if tags:
        msg["X-Tags"] = ", ".join(t.strip() for t in tags if t.strip())
    for name, value in headers.items():
        if not isinstance(value, str) or not name or any(c in name for c in ": \r\n"):
            raise InvalidInput(
                f"Headers[{name!r}] must be a valid header name with a string", "Headers"
            )
        _require_str(value, f"Headers[{name}]")
        del msg[name]
        msg[name] = value
    if html:
        msg.set_content(text or "")
        msg.add_alternative(html, subtype="html")
    else:
        msg.set_content(text or "")
    _add_attachments(msg, body.get("Attachments"))
    utf8 = any(not a.addr_spec.isascii() for a in (sender, *to, *cc, *bcc))
    data = msg.as_bytes(policy=SMTPUTF8 if utf8 else SMTP)
    envelope = Envelope(
        mail_from=sender.addr_spec,
        recipients=tuple(a.addr_spec for a in (*to, *cc, *bcc)),
        mail_params={"SMTPUTF8": ""} if utf8 else {},
    )
    return envelope, data


def _add_attachments(msg: EmailMessage, value: Any) -> None:
    """Inline parts (with a ContentID) join the HTML in multipart/related; the rest go in mixed."""
    if value is None:
        return
    if not isinstance(value, list):
        raise InvalidInput("Attachments must be an array", "Attachments")
    parsed = [_attachment(item, f"Attachments[{i}]") for i, item in enumerate(value)]
    for data, maintype, subtype, filename, cid in parsed:
        if not cid:
            continue
        target = msg
        if msg.get_content_type() == "multipart/alternative":
            parts = msg.get_payload()
            assert isinstance(parts, list)
            html_part = parts[-1]
            assert isinstance(html_part, EmailMessage)
            target = html_part
        target.add_related(
            data,
            maintype=maintype,
            subtype=subtype,
            cid=f"<{cid}>",
            filename=filename,
            disposition="inline",
        )
    for data, maintype, subtype, filename, cid in parsed:
        if not cid:
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)


def _attachment(item: Any, field: str) -> tuple[bytes, str, str, str, str]:
    if not isinstance(item, dict):
        raise InvalidInput(f"{field} must be an object", field)
    filename = _require_str(item.get("Filename"), f"{field}.Filename", required=True)
    content = _require_str(item.get("Content"), f"{field}.Content", required=True)
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{field}.Content must be base64", f"{field}.Content") from None
    ctype = _require_str(item.get("ContentType"), f"{field}.ContentType")
    ctype = ctype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    maintype, _, subtype = ctype.partition("/")
    if not maintype or not subtype:
        raise InvalidInput(f"{field}.ContentType must be type/subtype", f"{field}.ContentType")
    cid = _require_str(item.get("ContentID"), f"{field}.ContentID").strip("<>")
    return data, maintype, subtype, filename, cid
