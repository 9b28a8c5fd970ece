"""Stored records to the JSON shapes of Mailpit's API (field names and types per its spec)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from postroom.core.types import Address, AttachmentInfo, Checksums, MessageRecord

Json = dict[str, Any]


def rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def address(value: Address | None) -> Json:
    if value is None:
        return {"Name": "", "Address": ""}
    return {"Name": value.name, "Address": value.address}


def addresses(values: tuple[Address, ...]) -> list[Json]:
    return [address(v) for v in values]


def attachment(info: AttachmentInfo, checksums: Checksums | None = None) -> Json:
    """An attachment entry; `Checksums` hex digests of the content as downloaded (empty
    strings when it could not be read)."""
    return {
        "PartID": info.part_id,
        "FileName": info.filename,
        "ContentType": info.content_type,
        "ContentID": info.content_id,
        "Size": info.size,
        "Checksums": {
            "MD5": "" if checksums is None else checksums.md5,
            "SHA1": "" if checksums is None else checksums.sha1,
            "SHA256": "" if checksums is None else checksums.sha256,
        },
    }


def message_summary(record: MessageRecord) -> Json:
    s = record.summary
    return {
        "ID": record.id,
        "MessageID": s.message_id,
        "Read": record.read,
        "From": address(s.from_),
        "To": addresses(s.to),
        "Cc": addresses(s.cc),
        "Bcc": addresses(envelope_bcc(record)),
        "ReplyTo": addresses(s.reply_to),
        "Subject": s.subject,
        "Created": rfc3339(record.created),
        "Username": record.username or "",
        "Tags": list(record.tags),
        "Size": record.size,
        "Attachments": s.attachment_count,
        "Snippet": s.snippet,
        # Postroom additions (Mailpit clients ignore unknown fields).
        "Status": record.status,  # captured, or queued for a live project's outbound mail
        "Warnings": list(record.warnings),
    }


def envelope_bcc(record: MessageRecord) -> tuple[Address, ...]:
    """Bcc as Mailpit reports it: envelope recipients not named in To or Cc, plus a Bcc header."""
    shown = {a.address.lower() for a in (*record.summary.to, *record.summary.cc)}
    bcc = list(record.summary.bcc)
    seen = shown | {a.address.lower() for a in bcc}
    for rcpt in record.envelope.recipients:
        if rcpt.lower() not in seen:
            bcc.append(Address("", rcpt))
            seen.add(rcpt.lower())
    return tuple(bcc)
