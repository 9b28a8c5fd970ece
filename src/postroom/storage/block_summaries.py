"""PostgreSQL: which byte pairs each block of messages holds, for terms of 1-2 characters.

pg_trgm has no trigram for a term of one or two characters, so a search for a rare or absent
one (`qz`, `q`) read every message: 1.6-2.3 s for a first page at a million (issue 12). The
optional index of short terms (fulltext.PG_SHORT_INDEX) answers in ~50 ms but costs ingest
+35-43 % of PostgreSQL's CPU per message. These summaries cost ingest nothing:

* A block is BLOCK consecutive seqs (block = seq / BLOCK). Table `message_blocks` (migration
  0032) holds, for each summarised block, a row (block, MARK, '') saying it is summarised and
  one row (block, lead, follows) per byte `lead` of its text, `follows` a 256-bit map of the
  bytes that follow `lead` somewhere in it (bit `b`: byte `b >> 3`, `1 << (b & 7)`). The text
  is the UTF-8 of the seven indexed fields (fulltext.FTS_COLUMNS, lower-cased at ingest), each
  followed by a newline, so every byte of a field has a follower: a block holds a term's bytes
  only if it holds the lead of a 1-byte term, or every byte pair of a longer one. That is
  sound for any characters; a pair straddling two fields only adds a candidate.
* `summarise` makes the summaries of full blocks, later and elsewhere: the server's job
  `pg-blocks` (app.py, every `block_summaries_interval`, default 60 s) checks on a thread
  whether a block is due (`due`: one query) and then has `Summariser`'s child Python
  (postroom/block_summariser.py, kept between runs) make them, so the work has its own
  process and interpreter lock. The child reads a block's texts and folds the byte pairs of
  their distinct words with memoryview casts (C loops), one transaction per block.
* A search (`condition`, store.py) for required terms of 1-2 characters after the newest
  window held few matches reads the rows of the terms' leads and of MARK (a few thousand at a
  million), and keeps the seqs outside the summarised blocks that lack a term: the ranges
  between them and everything after the last (the newest, unsummarised messages, scanned).
  The per-field LIKE stays the exact test; the project's condition is the caller's.

Soundness. A summary must cover every message its block will ever hold, with its text:
* a message committed late into a block: a seq is taken by the transaction that inserts its
  row, so `safe_seq` reads the sequence's last value, then the clock, and waits until every
  transaction of this database that began before that instant has ended (pg_stat_activity's
  xact_start, prepared transactions too): every seq up to that value is then committed or
  never will be, and only blocks wholly at or below it are summarised. Backends the role may
  not see make it give up (no summary is made);
* a change of a message's text: trigger `messages_block_text` (migration 0032, on an UPDATE of
  an indexed column that changes it; Postroom never does one today) deletes its block's
  summary, which the next run makes again. Trigger and summariser take the block's advisory
  lock (transaction-scoped), the summariser before reading the block: either it reads the new
  text, or the trigger waits for its summary and deletes it;
* a deleted message leaves a summary that is a superset: a stale bit only costs a LIKE.
Summaries of blocks below the oldest message are deleted by the job.

Measured, 2026-12-04 (2 cores shared with other sessions' builds and benches):
* bench/search_million.py --backend postgres --no-seed --no-count --runs 3 on a copy of the
  million: `qz` (absent) 1,219 -> 40 ms warm, `q` 1,361 -> 44 ms (before at load 2.5-3.8,
  after at 1-2); `or`, `e` (common: the window fills the page) 25-29 ms either way;
  `condition` itself 2-7 ms (a thousand MARK rows and a thousand of each lead). Summarising
  the million (976 blocks, rows of ~350 characters): 27 s wall, 23 s of CPU, 44,000 rows,
  5 MB (load ~1; 65 s at load 4-6).
* bench/smtp_acceptance.py --only postroom --pg-blocks-ab --rounds 6 (interval 5 s, so the
  summariser works during each 20,000-message run; every round starts the server, so the
  child's start is paid once per round), load 1-5: medians 798 -> 829 msg/s, median of the
  paired rounds +3.7 %, CPU per message (the server's processes with the child) 0.87 -> 0.79
  ms, PostgreSQL's 0.28 -> 0.25: no cost the bench can see. The forms before did cost: the
  child started for each run and importing postroom.storage (~1.1 s of CPU each time), then
  folding every byte pair of the text (57-88 ms a block of 2 KB messages): 0.95 -> 1.22 ms
  and 0.80 -> 0.93 ms of CPU per message, medians -26 % and -17 %. Now the child imports
  psycopg only (0.35 s, once) and folds the pairs of the block's distinct words (13 ms a block
  of smtp-source's 2 KB messages; ~55 ms of random prose, whose words repeat less).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict

from sqlalchemy import ColumnElement, and_, or_, text
from sqlalchemy.engine import Connection, Engine

from postroom import block_summariser
from postroom.storage.fulltext import FTS_COLUMNS
from postroom.storage.schema import messages

log = logging.getLogger("postroom.storage.blocks")

TABLE = "message_blocks"
BLOCK = 1024  # seqs per block
MARK = -1  # the lead of the row saying that a block is summarised
LOCK_CLASS = 0x5052_424B  # advisory lock (LOCK_CLASS, block): a block's summary being made
# More ranges than this: the terms are in too many blocks to narrow the scan much, and the
# condition's arms cost the planner; the search goes without it.
MAX_RANGES = 200
HORIZON_WAIT = 5.0  # seconds `safe_seq` waits for older transactions to end
_TRIGGER = "messages_block_text"
_FUNCTION = "message_blocks_unsummarise"

_c = messages.c


def create_statements() -> list[str]:
    """The table, its index by block, and the trigger deleting a block's summary when the
    text of one of its messages changes (migration 0032)."""
    changed = " OR ".join(f"old.{n} IS DISTINCT FROM new.{n}" for n in FTS_COLUMNS)
    return [
        f"CREATE TABLE {TABLE} (block BIGINT NOT NULL, lead SMALLINT NOT NULL, "
        "follows BYTEA NOT NULL, PRIMARY KEY (lead, block))",
        f"CREATE INDEX ix_{TABLE}_block ON {TABLE} (block)",
        f"""CREATE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock({LOCK_CLASS}, (old.seq / {BLOCK})::integer);
  DELETE FROM {TABLE} WHERE block = old.seq / {BLOCK};
  RETURN NULL;
END $$""",
        f"CREATE TRIGGER {_TRIGGER} AFTER UPDATE OF {', '.join(FTS_COLUMNS)} ON messages "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION {_FUNCTION}()",
    ]


def drop_statements() -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {_TRIGGER} ON messages",
        f"DROP FUNCTION IF EXISTS {_FUNCTION}()",
        f"DROP TABLE IF EXISTS {TABLE}",
    ]


# -- making them (postroom/block_summariser.py, in a child process) -------------------------


def layout() -> block_summariser.Layout:
    return block_summariser.Layout(TABLE, BLOCK, MARK, LOCK_CLASS, FTS_COLUMNS)


def _dsn(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def summarise(engine: Engine, wait: float = HORIZON_WAIT) -> int:
    """Make the summaries due in this process (block_summariser.summarise); the number made."""
    return block_summariser.summarise(_dsn(engine), layout(), wait)


_BOUNDS = text("SELECT min(seq), max(seq) FROM messages")


def due(conn: Connection) -> bool:
    """Whether a full block past the oldest message may lack its summary (cheap: the job runs
    the child only then)."""
    first, last = conn.execute(_BOUNDS).one()
    if first is None:
        return False
    full = (int(last) + 1) // BLOCK - int(first) // BLOCK
    summarised = conn.execute(
        text(f"SELECT count(*) FROM {TABLE} WHERE lead = {MARK} AND block >= :b"),
        {"b": int(first) // BLOCK},
    ).scalar_one()
    return int(summarised) < full


STOP_TIMEOUT = 10.0  # seconds the child gets to finish a run when the server stops


class Summariser:
    """`summarise` in a child process (own interpreter lock), started at the first `run` and
    kept for the next ones (its start, ~0.5 s of CPU for the imports, is paid once): the
    database URL, then a line per run on its standard input; a line with the summaries made
    per run on its standard output. A child that died is started again by the next run."""

    def __init__(self, engine: Engine) -> None:
        self._given = json.dumps(
            {"dsn": _dsn(engine), "wait": HORIZON_WAIT, "layout": asdict(layout())}
        )
        self._child: asyncio.subprocess.Process | None = None

    async def run(self) -> int:
        """Make the summaries due; the number made (0 if the child failed). The child is
        killed if this is cancelled."""
        child = self._child
        if child is None or child.returncode is not None:
            child = self._child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "import sys; from postroom.block_summariser import main; sys.exit(main())",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert child.stdin is not None
            child.stdin.write(self._given.encode() + b"\n")
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(b"run\n")
            await child.stdin.drain()
            line = await child.stdout.readline()
        except asyncio.CancelledError:
            await self._kill(child)
            raise
        except ConnectionError:
            line = b""
        if not line:
            log.warning("block summaries: the child process ended (%s)", child.returncode)
            await self._kill(child)
            return 0
        return int(line)

    async def close(self) -> None:
        """Stop the child: its standard input closed, killed after STOP_TIMEOUT."""
        child, self._child = self._child, None
        if child is None or child.returncode is not None:
            return
        assert child.stdin is not None
        child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), STOP_TIMEOUT)
        except TimeoutError:
            await self._kill(child)

    async def _kill(self, child: asyncio.subprocess.Process) -> None:
        if child.returncode is None:
            child.kill()
            await child.wait()
        if self._child is child:
            self._child = None


# -- using them --------------------------------------------------------------------------------


def _holding(rows: Iterable[tuple[int, int, bytes]], needle: str) -> set[int]:
    """The blocks (of `rows`: block, lead, follows) whose summary holds `needle`'s bytes."""
    data = needle.encode()
    by_lead: dict[int, dict[int, bytes]] = {}
    for block, lead, bits in rows:
        by_lead.setdefault(lead, {})[block] = bits
    if len(data) == 1:
        return set(by_lead.get(data[0], {}))
    found: set[int] | None = None
    for lead, follow in itertools.pairwise(data):
        have = {
            b for b, bits in by_lead.get(lead, {}).items() if bits[follow >> 3] >> (follow & 7) & 1
        }
        found = have if found is None else found & have
    return found or set()


def seq_ranges(summarised: Iterable[int], holding: set[int]) -> tuple[list[tuple[int, int]], int]:
    """The seq ranges [lo, hi) outside the summarised blocks not in `holding`, and the seq
    from which all are kept (after the last such block)."""
    ranges: list[tuple[int, int]] = []
    start = 0
    for block in sorted(set(summarised) - holding):
        lo = block * BLOCK
        if lo > start:
            ranges.append((start, lo))
        start = lo + BLOCK
    return ranges, start


def condition(conn: Connection, needles: Sequence[str]) -> ColumnElement[bool] | None:
    """A condition on `messages.seq` true of every message holding all `needles` (lower-cased
    terms of 1-2 characters) in an indexed field; None when there is no summary or the terms
    are in every summarised block or in too many (more than MAX_RANGES ranges)."""
    wanted = {n for n in needles if n}
    if not wanted:
        return None
    leads = sorted({MARK, *(b for n in wanted for b in n.encode()[:-1] or n.encode())})
    rows = [
        (int(b), int(lead), bytes(f))
        for b, lead, f in conn.execute(
            text(f"SELECT block, lead, follows FROM {TABLE} WHERE lead = ANY(:leads)"),
            {"leads": leads},
        )
    ]
    summarised = [b for b, lead, _ in rows if lead == MARK]
    if not summarised:
        return None
    holding: set[int] | None = None
    for needle in wanted:
        have = _holding(rows, needle)
        holding = have if holding is None else holding & have
    if holding is not None and holding >= set(summarised):
        return None  # in every summarised block
    ranges, tail = seq_ranges(summarised, holding or set())
    if len(ranges) > MAX_RANGES:
        return None
    arms = [and_(_c.seq >= lo, _c.seq < hi) for lo, hi in ranges]
    return or_(*arms, _c.seq >= tail)


__all__ = [
    "BLOCK",
    "MARK",
    "TABLE",
    "Summariser",
    "condition",
    "create_statements",
    "drop_statements",
    "due",
    "layout",
    "seq_ranges",
    "summarise",
]
