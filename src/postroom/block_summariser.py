"""The child process that makes PostgreSQL's block summaries (storage/block_summaries.py, which
describes them and uses them).

Outside postroom.storage, and importing psycopg alone: a child importing that package (the
store, SQLAlchemy, Alembic) spent ~1.1 s of CPU starting, against ~0.3 s now.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

log = logging.getLogger("postroom.storage.blocks")

# What str.split() splits at (str.isspace(): no code point above U+3000 is a space).
_SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())


@dataclass(frozen=True)
class Layout:
    """The table of summaries and what a block is (block_summaries.layout())."""

    table: str
    block: int  # seqs per block
    mark: int  # the lead of the row saying that a block is summarised
    lock_class: int  # advisory lock (lock_class, block)
    columns: tuple[str, ...]  # the text fields summarised


def summary(texts: Iterable[Sequence[str]]) -> dict[int, bytes]:
    """lead -> the 32-byte map of the bytes following it, over the messages' fields (each
    field's UTF-8 followed by a newline), or a superset."""
    # The same pairs from far fewer bytes (words repeat): the text's distinct words (runs of
    # non-space), each between every space character the text holds, and those characters
    # side by side; a superset (a word beside a space it never touches) only adds candidates.
    # Each piece and each pair is an object made in a C loop: fewer of them is what is cheaper.
    text = "\n".join(f for fields in texts for f in (*fields, ""))
    words = set("\n".join(set(text.split("\n"))).split())  # lines repeat too: first those
    spaces = [c for c in _SPACES if c in text]
    data = "".join(
        [*(c + c.join(words) + c for c in spaces), *(a + b for a in spaces for b in spaces)]
    ).encode()
    pairs: set[int] = set()
    for offset in (0, 1):  # the pairs starting at even offsets, then at odd ones
        part = data[offset:]
        pairs.update(memoryview(part[: len(part) & ~1]).cast("H"))
    maps: dict[int, bytearray] = {}
    little = sys.byteorder == "little"
    for pair in pairs:
        lead, follow = (pair & 0xFF, pair >> 8) if little else (pair >> 8, pair & 0xFF)
        found = maps.get(lead)
        if found is None:
            found = maps[lead] = bytearray(32)
        found[follow >> 3] |= 1 << (follow & 7)
    return {lead: bytes(bits) for lead, bits in maps.items()}


_LAST = "SELECT pg_sequence_last_value(pg_get_serial_sequence('messages', 'seq')::regclass)"
_OLDEST = (
    "SELECT min(xact_start), count(*) FILTER (WHERE query = '<insufficient privilege>') "
    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
_PREPARED = "SELECT min(prepared) FROM pg_prepared_xacts WHERE database = current_database()"


def _one(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def safe_seq(conn: psycopg.Connection[Any], wait: float) -> int | None:
    """The largest seq up to which every message is committed or never will be: the
    sequence's last value, once every transaction of the database that began before it was
    read has ended (block_summaries.py); None if some are still open after `wait` seconds,
    or if the role cannot see every backend of the database. `conn` in autocommit."""
    last = _one(conn, _LAST)
    seen = _one(conn, "SELECT clock_timestamp()")
    deadline = time.monotonic() + wait
    while True:
        oldest, hidden = _one(conn, _OLDEST)
        prepared = _one(conn, _PREPARED)
        if hidden:
            log.warning("block summaries: %d backends are hidden from this role", hidden)
            return None
        if all(t is None or t > seen for t in (oldest, prepared)):
            return 0 if last is None else int(last)
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.05)


def due_blocks(conn: psycopg.Connection[Any], layout: Layout, first: int, safe: int) -> list[int]:
    """The blocks from the one of seq `first` to the last wholly at or below `safe` that have
    no summary."""
    sql = (
        "SELECT b FROM generate_series(%s::bigint, %s::bigint) AS b WHERE NOT EXISTS "
        f"(SELECT 1 FROM {layout.table} WHERE lead = {layout.mark} AND block = b) ORDER BY b"
    )
    last = (safe + 1) // layout.block - 1
    return [int(r[0]) for r in conn.execute(sql, (first // layout.block, last))]


def summarise_block(conn: psycopg.Connection[Any], layout: Layout, block: int) -> bool:
    """Make `block`'s summary in one transaction, its advisory lock taken before its messages
    are read; False if another summariser made it first."""
    table, size = layout.table, layout.block
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (layout.lock_class, block))
        made = conn.execute(
            f"SELECT 1 FROM {table} WHERE lead = {layout.mark} AND block = %s", (block,)
        ).fetchone()
        if made is not None:
            return False
        rows = conn.execute(
            f"SELECT {', '.join(layout.columns)} FROM messages WHERE seq >= %s AND seq < %s",
            (block * size, (block + 1) * size),
        )
        values = [(block, layout.mark, b"")]
        values += [(block, lead, bits) for lead, bits in summary(rows).items()]
        with conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} (block, lead, follows) VALUES (%s, %s, %s)", values
            )
    return True


def summarise(dsn: str, layout: Layout, wait: float) -> int:
    """Make the summaries due (full blocks at or below `safe_seq`); the number made. Deletes
    those of blocks below the oldest message first."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        first = _one(conn, "SELECT min(seq) FROM messages")
        if first is None:
            return 0
        conn.execute(f"DELETE FROM {layout.table} WHERE block < %s", (first // layout.block,))
        safe = safe_seq(conn, wait)
        if safe is None:
            return 0
        blocks = due_blocks(conn, layout, int(first), safe)
        return sum(summarise_block(conn, layout, block) for block in blocks)


def main() -> int:
    """The child of block_summaries.Summariser: a JSON line {dsn, wait, layout} on standard
    input, then a run of `summarise` per line, its count printed; ends when standard input
    closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops it (its stdin closes)
    logging.basicConfig(level=logging.WARNING)
    given = json.loads(sys.stdin.readline())
    layout = Layout(**{**given["layout"], "columns": tuple(given["layout"]["columns"])})
    for _ in sys.stdin:
        try:
            made = summarise(given["dsn"], layout, float(given["wait"]))
        except Exception:
            log.exception("block summaries: a run failed")
            made = 0
        print(made, flush=True)
    return 0


__all__ = ["Layout", "due_blocks", "main", "safe_seq", "summarise", "summarise_block", "summary"]

if __name__ == "__main__":
    sys.exit(main())
