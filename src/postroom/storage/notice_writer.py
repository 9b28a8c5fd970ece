"""Insert one new message inside a transaction someone else holds: a notice that must be
written with the change that causes it (a DSN with the failure it reports, queue.py).

The message must be complete (with its summary) and whole in memory (not spooled); it gets
its rows as the batch writer makes them (batch.prepare): the message, its compressed bytes,
its tags, its queue entries and their `send` events.
"""

from __future__ import annotations

import zstandard
from sqlalchemy import insert
from sqlalchemy.engine import Connection

from postroom.core.types import NewMessage
from postroom.storage import codec
from postroom.storage.batch import ZSTD_LEVEL, order_keys, prepare, tag_spellings
from postroom.storage.events import INSERT_COLUMNS as EVENT_COLUMNS
from postroom.storage.events import events
from postroom.storage.queue import INSERT_COLUMNS as QUEUE_COLUMNS
from postroom.storage.queue import queue_entries
from postroom.storage.schema import message_raw, message_tags, messages


def insert_message(conn: Connection, message: NewMessage) -> None:
    if message.summary is None or message.spooled is not None:
        raise ValueError("only a complete message held in memory is written here")
    rows = prepare(message)
    conn.execute(insert(messages).values(dict(zip(codec.MESSAGE_COLUMNS, rows.row, strict=True))))
    compressed = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True).compress(
        rows.raw
    )
    conn.execute(insert(message_raw).values(message_id=rows.id, data=compressed))
    if rows.tags:
        spelling = tag_spellings(conn, rows.project, [t.lower() for t in rows.tags])
        created_us, seq = order_keys(conn, [rows.id])[rows.id]
        conn.execute(
            insert(message_tags),
            [
                {
                    "message_id": rows.id,
                    "project": rows.project,
                    "tag": spelling.get(t.lower(), t),
                    "tag_lc": t.lower(),
                    "created_us": created_us,
                    "seq": seq,
                }
                for t in rows.tags
            ],
        )
    if rows.queue:
        conn.execute(
            insert(queue_entries), [dict(zip(QUEUE_COLUMNS, r, strict=True)) for r in rows.queue]
        )
        conn.execute(
            insert(events), [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in rows.events]
        )
