"""Build `NewMessage` values directly (no MIME parsing) for storage tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from postroom.core.clock import FakeClock
from postroom.core.ids import new_id
from postroom.core.types import Address, AttachmentInfo, Envelope, NewMessage, Summary


def addr(text: str) -> Address:
    """ "Name <a@b>" or "a@b" -> Address."""
    if "<" in text:
        name, _, rest = text.partition("<")
        return Address(name.strip(), rest.rstrip(">").strip())
    return Address("", text)


def make_message(
    clock: FakeClock,
    *,
    subject: str = "Hello",
    from_: str | None = "Alice Example <alice@example.com>",
    to: Sequence[str] = ("bob@example.org",),
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    reply_to: Sequence[str] = (),
    message_id: str | None = None,
    body: str = "plain body text",
    raw: bytes | None = None,
    tags: Sequence[str] = (),
    attachments: Sequence[AttachmentInfo] = (),
    project: str = "default",
    created: datetime | None = None,
    date: datetime | None = None,
    username: str | None = None,
    status: str = "captured",
    warnings: Sequence[str] = (),
    step: float = 1.0,
) -> NewMessage:
    """A message created at `clock.now()` (then the clock moves on by `step` seconds)."""
    when = created or clock.now()
    clock.advance(step)
    ident = new_id(when)
    mid = message_id if message_id is not None else f"{ident.lower()}@test.example"
    if raw is None:
        raw = (
            f"From: {from_ or ''}\r\nTo: {', '.join(to)}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{mid}>\r\n\r\n{body}\r\n"
        ).encode()
    summary = Summary(
        from_=addr(from_) if from_ is not None else None,
        to=tuple(addr(a) for a in to),
        cc=tuple(addr(a) for a in cc),
        bcc=tuple(addr(a) for a in bcc),
        reply_to=tuple(addr(a) for a in reply_to),
        subject=subject,
        message_id=mid,
        date=date,
        snippet=body[:100],
        attachments=tuple(attachments),
        header_tags=(),
        search_text=body.lower(),
    )
    envelope = Envelope(
        mail_from=addr(from_).address if from_ else "",
        recipients=tuple(addr(a).address for a in (*to, *cc, *bcc)),
    )
    return NewMessage(
        id=ident,
        project=project,
        created=when,
        raw=raw,
        envelope=envelope,
        summary=summary,
        tags=tuple(tags),
        username=username,
        status=status,
        warnings=tuple(warnings),
    )


def attachment(filename: str = "report.pdf", inline: bool = False) -> AttachmentInfo:
    return AttachmentInfo(
        part_id="2",
        filename=filename,
        content_type="application/pdf",
        content_id="",
        size=1234,
        inline=inline,
    )
