"""The JSON body of the native send API (`POST /api/v2/messages`) turned into a message.

Fields (snake case): `from`, `to`, `cc`, `bcc`, `reply_to` (an address is a string
`"Name <user@example.com>"` or `"user@example.com"`, or an object `{"email", "name"}`; the
lists also take a single address), `subject`, `text`, `html`, `attachments` (objects with
`filename`, `content` in base64, `content_type`, and `content_id` for an inline part the HTML
refers to as `cid:`), `headers` (name to string), `tags` (strings), `metadata` (string keys to
string values), `template` (`{"id", "version", "data"}`, rendered by the caller before
this module builds the message) and `send_at` (RFC 3339: a live message's deliveries wait
until then).  Or `raw`: a whole MIME message in base64, with the envelope
taken from `from`/`to`/`cc`/`bcc` when given, else from its headers.

Every error is an InvalidInput naming the field (`to[2].email`, `attachments[0].content`).
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email import message_from_string
from email.headerregistry import Address
from email.policy import compat32
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from typing import Any

from postroom.api import mime_writer
from postroom.core.clock import Clock
from postroom.core.errors import InvalidInput
from postroom.core.types import Envelope, Summary
from postroom.mime.summary import summarize_built

MAX_TAGS = 20
MAX_METADATA = 50
MAX_METADATA_VALUE = 1000
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 ftext
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
        "dkim-signature",
        "received",
        "return-path",
    }
)
KNOWN_FIELDS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply_to",
        "subject",
        "text",
        "html",
        "attachments",
        "headers",
        "tags",
        "metadata",
        "template",
        "raw",
        "project",
        "send_at",
    }
)
MAX_SCHEDULE = timedelta(days=30)  # how far ahead `send_at` may be


@dataclass(frozen=True, slots=True)
class Built:
    envelope: Envelope
    data: bytes
    tags: tuple[str, ...]
    metadata: dict[str, str]
    send_at: datetime | None = None
    # The summary of `data` when it is known without parsing it (mime/summary.summarize_built)
    summary: Summary | None = None


def _string(value: Any, field: str, *, multiline: bool = False) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field)
    if not multiline and ("\r" in value or "\n" in value):
        raise InvalidInput(f"{field} must not contain line breaks", field)
    return value


def _address(email: str, field: str, name: str = "") -> Address:
    email = email.strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or any(c in email for c in ' <>,;"\r\n'):
        raise InvalidInput(f"{field}: {email!r} is not a valid email address", field)
    if not local.isascii():
        # As SES: the API writes no SMTPUTF8 message (send such mail as raw MIME over SMTP).
        raise InvalidInput(
            f"{field}: {email!r} has a non-ASCII local part, which needs SMTPUTF8; "
            "send it over SMTP or as raw MIME",
            field,
        )
    if not domain.isascii():  # an internationalized domain goes out as its A-label
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidInput(
                f"{field}: {email!r} has a domain that is not a valid IDN", field
            ) from None
    try:
        return Address(display_name=name, username=local, domain=domain)
    except (ValueError, IndexError) as exc:
        raise InvalidInput(
            f"{field}: {email!r} is not a valid email address ({exc})", field
        ) from None


def parse_address(value: Any, field: str) -> Address:
    """One address: "user@example.com", "Name <user@example.com>" or {"email", "name"}."""
    if isinstance(value, dict):
        unknown = set(value) - {"email", "name"}
        if unknown:
            raise InvalidInput(f"{field} has an unknown field {sorted(unknown)[0]!r}", field)
        email = _string(value.get("email"), f"{field}.email")
        if not email:
            raise InvalidInput(f"{field}.email is required", f"{field}.email")
        return _address(email, f"{field}.email", _string(value.get("name"), f"{field}.name"))
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            f"{field} must be an address string or an object with email and name", field
        )
    text = _string(value, field)
    if "<" in text:
        name, email = parseaddr(text)
        if not email or text.count("<") != 1 or not text.rstrip().endswith(">"):
            raise InvalidInput(f"{field}: {text!r} is not a valid address", field)
        return _address(email, field, name)
    return _address(text, field)


def address_list(value: Any, field: str) -> list[Address]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [parse_address(item, f"{field}[{i}]") for i, item in enumerate(items)]


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise InvalidInput("tags must be an array of non-empty strings", "tags")
    if len(value) > MAX_TAGS:
        raise InvalidInput(f"tags: at most {MAX_TAGS}", "tags")
    for i, tag in enumerate(value):
        _string(tag, f"tags[{i}]")
        if "," in tag:
            raise InvalidInput(f"tags[{i}] must not contain a comma", f"tags[{i}]")
    return tuple(t.strip() for t in value)


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("metadata must be an object of string values", "metadata")
    if len(value) > MAX_METADATA:
        raise InvalidInput(f"metadata: at most {MAX_METADATA} keys", "metadata")
    for key, item in value.items():
        if not isinstance(item, str) or len(item) > MAX_METADATA_VALUE or len(key) > 100:
            raise InvalidInput(
                f"metadata[{key!r}] must be a string of at most {MAX_METADATA_VALUE} characters",
                f"metadata.{key}",
            )
    return dict(value)


def _headers(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise InvalidInput("headers must be an object of header name to string", "headers")
    out = []
    for name, item in value.items():
        field = f"headers.{name}"
        if not _HEADER_NAME.match(name) or len(name) > 100:
            raise InvalidInput(f"{name!r} is not a valid header name", field)
        if name.lower() in _RESERVED_HEADERS:
            raise InvalidInput(
                f"{name} cannot be set in headers: use the field of the same name", field
            )
        out.append((name, _string(item, field)))
    return out


def _attachments(value: Any) -> list[tuple[bytes, str, str, str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput("attachments must be an array", "attachments")
    out = []
    for i, item in enumerate(value):
        field = f"attachments[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{field} must be an object", field)
        filename = _string(item.get("filename"), f"{field}.filename")
        if not filename.strip():
            raise InvalidInput(f"{field}.filename is required", f"{field}.filename")
        content = _string(item.get("content"), f"{field}.content", multiline=True)
        try:
            data = base64.b64decode("".join(content.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{field}.content must be base64", f"{field}.content") from None
        ctype = _string(item.get("content_type"), f"{field}.content_type").strip().lower()
        ctype = ctype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        maintype, _, subtype = ctype.partition("/")
        if not re.fullmatch(r"[a-z0-9][a-z0-9!#$&^_.+-]*", maintype or "-") or not re.fullmatch(
            r"[a-z0-9][a-z0-9!#$&^_.+-]*", subtype or "-"
        ):
            raise InvalidInput(
                f"{field}.content_type must be type/subtype", f"{field}.content_type"
            )
        cid = _string(item.get("content_id"), f"{field}.content_id").strip().strip("<>")
        if cid and (" " in cid or ("@" not in cid and not re.fullmatch(r"[\w.-]+", cid))):
            raise InvalidInput(
                f"{field}.content_id is not a valid Content-ID", f"{field}.content_id"
            )
        out.append((data, maintype, subtype, filename, cid))
    return out


def _envelope(sender: Address | str, recipients: list[Address]) -> Envelope:
    seen: set[str] = set()
    unique: list[str] = []
    for address in recipients:
        spec = address.addr_spec
        if spec.lower() not in seen:
            seen.add(spec.lower())
            unique.append(spec)
    mail_from = sender if isinstance(sender, str) else sender.addr_spec
    utf8 = not mail_from.isascii() or not all(r.isascii() for r in unique)
    return Envelope(mail_from, tuple(unique), mail_params={"SMTPUTF8": ""} if utf8 else {})


def send_at(value: Any, clock: Clock) -> datetime | None:
    """`send_at`: an RFC 3339 time with its offset, at most MAX_SCHEDULE ahead; a time
    already past sends at once."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("send_at must be an RFC 3339 time, e.g. 2026-01-01T09:00:00Z", "send_at")
    try:
        when = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise InvalidInput(
            f"send_at: {value!r} is not an RFC 3339 time, e.g. 2026-01-01T09:00:00Z", "send_at"
        ) from None
    if when.tzinfo is None:
        raise InvalidInput("send_at needs a time zone offset (Z or +hh:mm)", "send_at")
    if when - clock.now() > MAX_SCHEDULE:
        raise InvalidInput(f"send_at may be at most {MAX_SCHEDULE.days} days ahead", "send_at")
    return when


def build(body: dict[str, Any], clock: Clock, hostname: str) -> Built:
    """Validate a send request; its envelope and message bytes (CRLF). Raises InvalidInput."""
    built = _build(body, clock, hostname)
    when = send_at(body.get("send_at"), clock)
    return built if when is None else replace(built, send_at=when)


def _build(body: dict[str, Any], clock: Clock, hostname: str) -> Built:
    unknown = set(body) - KNOWN_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"unknown field {name!r}", name)
    tags = _tags(body.get("tags"))
    metadata = _metadata(body.get("metadata"))
    if body.get("raw") is not None:
        return _build_raw(body, tags, metadata)
    if body.get("from") is None:
        raise InvalidInput("from is required", "from")
    sender = parse_address(body["from"], "from")
    to = address_list(body.get("to"), "to")
    cc = address_list(body.get("cc"), "cc")
    bcc = address_list(body.get("bcc"), "bcc")
    reply_to = address_list(body.get("reply_to"), "reply_to")
    if not (to or cc or bcc):
        raise InvalidInput("at least one recipient is required in to, cc or bcc", "to")
    subject = _string(body.get("subject"), "subject")
    text = _string(body.get("text"), "text", multiline=True)
    html = _string(body.get("html"), "html", multiline=True)
    if not (text or html):
        raise InvalidInput("text or html is required (or raw, or a template)", "text")
    extra: list[tuple[str, str]] = []
    if tags:
        extra.append(("X-Tags", ", ".join(tags)))
    extra += _headers(body.get("headers"))
    domain = sender.domain if sender.domain.isascii() else hostname
    head = mime_writer.Headers(
        sender=sender,
        to=to,
        cc=cc,
        reply_to=reply_to,
        subject=subject,
        date=format_datetime(clock.now()),
        message_id=make_msgid(domain=domain),
        extra=extra,
    )
    parts = [
        mime_writer.Part(data, maintype, subtype, filename, cid)
        for data, maintype, subtype, filename, cid in _attachments(body.get("attachments"))
    ]
    data = mime_writer.write(head, text, html, parts)
    envelope = _envelope(sender, [*to, *cc, *bcc])
    summary = None if parts else summarize_built(data, text)
    return Built(envelope, data, tags, metadata, summary=summary)


def _build_raw(body: dict[str, Any], tags: tuple[str, ...], metadata: dict[str, str]) -> Built:
    for name in ("subject", "text", "html", "attachments", "headers", "reply_to", "template"):
        if body.get(name) is not None:
            raise InvalidInput(f"{name} cannot be given with raw (it is in the message)", name)
    raw = _string(body.get("raw"), "raw", multiline=True)
    try:
        data = base64.b64decode("".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("raw must be the MIME message in base64", "raw") from None
    if not data.strip():
        raise InvalidInput("raw is empty", "raw")
    return raw_message(
        data, body.get("from"), [body.get(n) for n in ("to", "cc", "bcc")], tags, metadata
    )


def raw_message(
    data: bytes,
    sender_value: Any,
    recipient_values: list[Any],
    tags: tuple[str, ...] = (),
    metadata: dict[str, str] | None = None,
) -> Built:
    """A raw MIME message with its envelope: the given sender and recipients, or else those of
    its From, To, Cc and Bcc headers (CRLF line endings, as SMTP carries it)."""
    data = re.sub(rb"\r?\n", b"\r\n", data)
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    headers = message_from_string(head + "\r\n\r\n", policy=compat32)
    if sender_value is not None:
        sender: Address | str = parse_address(sender_value, "from")
    else:
        found = [a for _, a in getaddresses(headers.get_all("From") or []) if a]
        if not found:
            raise InvalidInput("the message has no From header and no from was given", "from")
        sender = _address(found[0], "from")
    recipients: list[Address] = []
    given = any(v is not None for v in recipient_values)
    if given:
        for name, value in zip(("to", "cc", "bcc"), recipient_values, strict=True):
            recipients += address_list(value, name)
    else:
        for name in ("To", "Cc", "Bcc"):
            for _, spec in getaddresses(headers.get_all(name) or []):
                if spec:
                    recipients.append(_address(spec, name.lower()))
    if not recipients:
        raise InvalidInput("no recipients: give to, cc or bcc, or put them in the message", "to")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return Built(_envelope(sender, recipients), data, tags, metadata or {})
