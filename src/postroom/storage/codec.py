"""Conversions between the core value types and table rows.

Writing runs in the store's writer thread for every message, so it stays plain Python:
no SQLAlchemy type processing, compact JSON, one pass over each field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from postroom.core.types import (
    Address,
    AttachmentInfo,
    Envelope,
    MessageRecord,
    NewMessage,
    Summary,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.loads


def to_micros(when: datetime) -> int:
    """Microseconds since the Unix epoch; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def _addresses_json(addresses: Sequence[Address]) -> str:
    if not addresses:
        return "[]"
    return _dumps([[a.name, a.address] for a in addresses])


def _addresses_text(addresses: Iterable[Address]) -> str:
    """Lower-cased "name <address>" lines: what from:/to:/cc:/bcc: and free text search."""
    return "\n".join(f"{a.name} <{a.address}>" if a.name else a.address for a in addresses).lower()


def _list_json(items: Sequence[Any]) -> str:
    return _dumps(list(items)) if items else "[]"


def _addresses(data: str) -> tuple[Address, ...]:
    return tuple(Address(name, address) for name, address in _loads(data))


def clean_text(text: str) -> str:
    """`text` without what databases refuse: NUL becomes U+FFFD, lone surrogates "?"."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def clean_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(clean_text(v) if isinstance(v, str) else v for v in row)


def normalise_tags(tags: Iterable[str]) -> list[str]:
    """Strip, drop empties, drop case-insensitive duplicates (first spelling wins)."""
    seen: set[str] = set()
    out: list[str] = []
    for tag in tags:
        tag = tag.strip()
        lowered = tag.lower()
        if tag and lowered not in seen:
            seen.add(lowered)
            out.append(tag)
    return out


# Column order of `message_row` tuples (the insert statement is built from it).
MESSAGE_COLUMNS = (
    "id",
    "project",
    "created_us",
    "size",
    "read",
    "status",
    "username",
    "mail_from",
    "recipients",
    "envelope_params",
    "from_json",
    "to_json",
    "cc_json",
    "bcc_json",
    "reply_to_json",
    "from_text",
    "to_text",
    "cc_text",
    "bcc_text",
    "subject",
    "subject_lc",
    "message_id",
    "message_id_lc",
    "date",
    "snippet",
    "attachment_count",
    "attachments",
    "header_tags",
    "return_path",
    "defects",
    "warnings",
    "search_text",
)
_NO_PARAMS = '{"mail":{},"rcpt":[]}'


def message_row(message: NewMessage) -> tuple[Any, ...]:
    """The `messages` row for a new message, in MESSAGE_COLUMNS order."""
    s = message.summary
    if s is None:
        raise ValueError(f"message {message.id} has no summary to store")
    env = message.envelope
    from_ = s.from_
    subject = s.subject
    message_id = s.message_id
    if env.mail_params or env.rcpt_params or message.metadata:
        values: dict[str, Any] = {
            "mail": dict(env.mail_params),
            "rcpt": [dict(p) for p in env.rcpt_params],
        }
        if message.metadata:  # the sender's metadata rides with the envelope's parameters
            values["meta"] = dict(message.metadata)
        params = _dumps(values)
    else:
        params = _NO_PARAMS
    attachments = s.attachments
    return (
        message.id,
        message.project,
        to_micros(message.created),
        message.size,
        False,
        message.status,
        message.username,
        env.mail_from,
        _list_json(env.recipients),
        params,
        None if from_ is None else _dumps([from_.name, from_.address]),
        _addresses_json(s.to),
        _addresses_json(s.cc),
        _addresses_json(s.bcc),
        _addresses_json(s.reply_to),
        "" if from_ is None else _addresses_text((from_,)),
        _addresses_text(s.to),
        _addresses_text(s.cc),
        _addresses_text(s.bcc),
        subject,
        subject.lower(),
        message_id,
        message_id.lower(),
        None if s.date is None else s.date.isoformat(),
        s.snippet,
        s.attachment_count,
        _dumps(
            [
                [a.part_id, a.filename, a.content_type, a.content_id, a.size, a.inline]
                for a in attachments
            ]
        )
        if attachments
        else "[]",
        _list_json(s.header_tags),
        s.return_path,
        _list_json(s.defects),
        _list_json(message.warnings),
        s.search_text.lower(),
    )


def metadata_of_params(params: str) -> dict[str, str]:
    """The send API's metadata kept in an `envelope_params` value ({} when none)."""
    if '"meta"' not in params:
        return {}
    meta = _loads(params).get("meta")
    return dict(meta) if isinstance(meta, dict) else {}


def record_from_row(row: Mapping[Any, Any], tags: Sequence[str]) -> MessageRecord:
    """Rebuild a record; `search_text` is "" when the row was read without it (listing)."""
    params = _loads(row["envelope_params"])
    from_json = row["from_json"]
    from_ = None if from_json is None else Address(*_loads(from_json))
    date = row["date"]
    summary = Summary(
        from_=from_,
        to=_addresses(row["to_json"]),
        cc=_addresses(row["cc_json"]),
        bcc=_addresses(row["bcc_json"]),
        reply_to=_addresses(row["reply_to_json"]),
        subject=row["subject"],
        message_id=row["message_id"],
        date=None if date is None else datetime.fromisoformat(date),
        snippet=row["snippet"],
        attachments=tuple(
            AttachmentInfo(
                part_id=a[0],
                filename=a[1],
                content_type=a[2],
                content_id=a[3],
                size=a[4],
                inline=a[5],
            )
            for a in _loads(row["attachments"])
        ),
        header_tags=tuple(_loads(row["header_tags"])),
        search_text=row.get("search_text") or "",
        return_path=row["return_path"],
        defects=tuple(_loads(row["defects"])),
    )
    envelope = Envelope(
        mail_from=row["mail_from"],
        recipients=tuple(_loads(row["recipients"])),
        mail_params=params["mail"],
        rcpt_params=tuple(params["rcpt"]),
    )
    return MessageRecord(
        id=row["id"],
        project=row["project"],
        created=from_micros(row["created_us"]),
        size=row["size"],
        read=bool(row["read"]),
        envelope=envelope,
        summary=summary,
        tags=tuple(tags),
        username=row["username"],
        status=row["status"],
        warnings=tuple(_loads(row["warnings"])),
        metadata=params.get("meta") or {},
    )
