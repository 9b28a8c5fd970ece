"""What the store does to a message that arrives without its summary (core.ports.Completer).

The acceptance pipeline hands the store messages without a summary, so that parsing happens
where the batch is written (in the writer process, or the writer thread) instead of on the
event loop that serves every SMTP session.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

from postroom.core.spooled import spooled_chunks
from postroom.core.types import NewMessage, Summary
from postroom.mime.stream import shrink
from postroom.mime.summary import summarize
from postroom.mime.tags import tags_for


def complete_message(message: NewMessage) -> NewMessage:
    """`message` with its summary and tags (see summary_and_tags). A message that continues
    in a file is parsed as a stream, from a small copy (mime/stream.py)."""
    spooled = message.spooled
    if spooled is None:
        summary = summarize(message.raw)
    else:
        shrunk = shrink(itertools.chain((message.raw,), spooled_chunks(spooled)))
        summary = summarize(shrunk.data, shrunk.elided)
    tags = tags_for(summary, message.envelope.recipients)
    tags = (*tags, *(tag for tag in message.tags if tag not in tags))
    return replace(message, summary=summary, tags=tags)


def summary_and_tags(
    raw: bytes, recipients: Sequence[str], extra: Sequence[str] = ()
) -> tuple[Summary, tuple[str, ...]]:
    """The summary of `raw`, and its tags (X-Tags, plus-addresses) followed by those of
    `extra` that are not among them already."""
    summary = summarize(raw)
    tags = tags_for(summary, recipients)
    return summary, (*tags, *(tag for tag in extra if tag not in tags))
