"""What the store does to a message that arrives without its summary (core.ports.Completer).

The acceptance pipeline hands the store messages without a summary, so that parsing happens
where the batch is written (in the writer process, or the writer thread) instead of on the
event loop that serves every SMTP session.
"""

from __future__ import annotations

from dataclasses import replace

from postroom.core.types import NewMessage
from postroom.mime.summary import summarize
from postroom.mime.tags import tags_for


def complete_message(message: NewMessage) -> NewMessage:
    """The summary of `message.raw`, and its tags (X-Tags, plus-addresses) followed by those
    the message came with that are not among them already."""
    summary = summarize(message.raw)
    tags = tags_for(summary, message.envelope.recipients)
    extra = tuple(tag for tag in message.tags if tag not in tags)
    return replace(message, summary=summary, tags=(*tags, *extra))
