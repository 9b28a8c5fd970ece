"""The full-text index of `messages` (migration 0018) and the conditions that use it.

Search keeps Mailpit's semantics: a term matches when it is a case-insensitive substring of a
field. The text columns are lower-cased at ingest (schema.py), so the exact test stays the plain
`LIKE '%term%'` of search_sql.py, which the index narrows:

* PostgreSQL: one GIN `gin_trgm_ops` (pg_trgm) index on the concatenation of the seven text
  columns. `concat LIKE '%term%'` is answered by the index (with PostgreSQL's own recheck), and
  since a field holding the term makes the concatenation hold it, it is a sound pre-filter for
  every field; the per-field `LIKE` stays beside it, so a match straddling two columns of the
  concatenation is never a result. Terms shorter than three characters have no trigram: they
  are answered by the scan unless the database has the index of short terms.
* PostgreSQL, terms of 1-2 characters: `postroom fulltext on` makes a second GIN
  `gin_trgm_ops` index (PG_SHORT_INDEX, CONCURRENTLY; `off` drops it; off by default) on the
  concatenation with SEPARATOR ("0") around each character: `regexp_replace(concat, '', '0',
  'g')`, "ab" -> "0a0b0". "ab" is in the text iff "a0b" is in that one, a trigram ("0a0" for
  "a"; regexp `.` and '' match at newlines too, PostgreSQL 15); pg_trgm extracts none from
  `LIKE '%ab%'` and there is no pg_bigm. Used only for required terms of 1-2 letters or ASCII
  digits (a pattern with punctuation, "a." -> "a0.", gets only the trigram of a word's end,
  "a0 ", held by nearly every message: 44 s at 1M when tried) and only for the page's full
  search after a newest-first window that held fewer than store.SHORT_DENSE matches: each
  candidate's recheck computes the interleaved text again (~0.1 us a character), so a common
  term is read newest first instead (the planner, with statistics on the expression, chose
  that for "er" anyway). The per-field LIKEs cost the planner less, so they filter first: a
  walk never computes the expression but for a match (alone, the condition cost 70 s at 1M
  when the planner walked with it). Counting matches (`list`) still scans. Doubling each character
  ("ab" -> "aabb") would serve 2-character terms the same way with more distinct trigrams,
  tripling 1-character ones at 3 times the text; interleaving serves both at twice.

  What it costs, and why it is off: computing the expression is ~0.2 ms per 2 KB and pg_trgm
  takes ~0.1 us a character of twice the text. bench/smtp_acceptance.py --pg-trigram-ab
  --pg-short-index --rounds 6 --messages 10000 (load 5-11, wall rates 192-1,944 msg/s: noise):
  PostgreSQL backends' CPU per message 0.18 ms without full-text indexes, 0.25 with the
  trigram index, 0.54 with both (+0.29 for this one, 4 times the other's), Postroom's own
  0.80-0.84; wall medians -5.5% and -7.2% (paired rounds -9.8%, -12.9%). An earlier run (the
  index made by a migration, load 5-7): 0.16, 0.23, 0.49 ms. So +35-43% of the CPU per
  message, against the bar of 10% of acceptance throughput.
  At 1M (bench/search_million.py, rows of ~350 characters): made in 124 s by a plain CREATE
  INDEX at load ~3, 4 min 51 s CONCURRENTLY by `postroom fulltext on` at load 6-10 (220 MB;
  the trigram index is 411 MB). First pages, warm: absent `qz` 2.3 s -> 48 ms (load ~6) and
  79 ms (load ~4, an absent longer term 72 ms then), `q` 1.3 s -> 53-59 ms; common `er`,
  `or`, `e` unchanged at 40-90 ms (the window). Not measured: rows wider than 1 KB, whose
  expression gets no statistics (the planner then estimates the condition by default).
  Without it, such terms are narrowed by summaries of blocks of messages made after the fact by
  a child process (block_summaries.py), which cost the capture path nothing.
* SQLite: a contentless FTS5 table `messages_fts` of one column (the seven fields joined by
  newlines, two more after the last: migration 0029; `detail=none`, `columnsize=0`, trigram tokens,
  `case_sensitive 1` since the text is lower-cased already), on by default in a new database
  (migration 0027) and a choice per database (`postroom fulltext on|off`, engine.py
  `set_sqlite_fulltext`; an existing database keeps its choice). Triggers keep it in the transaction
  of each change of a message, in two steps: an insert only puts the message's seq in
  `messages_fts_pending`, and the writer (batch.py) indexes the waiting messages later in one
  INSERT ... SELECT (one FTS5 segment). The writer process (writer_child.py, the server's
  default) does it once no batch has come for IDLE_DRAIN (0.1 s), IDLE_STEP (500) at a time, the
  oldest first, in transactions of their own (`sqlite_drain_oldest`), and inside a batch's
  transaction only for the DRAIN_EVERY oldest once WAITING_MAX (20,000) wait; a writer thread
  (`--no-writer-process`) indexes all of them once it has written DRAIN_EVERY, inside one of its
  transactions (`sqlite_drain`). A delete takes the message out of whichever holds it (FTS5's
  'delete' with the row's text rebuilt, only for an indexed one); a text update takes an indexed
  message out and puts it back in the waiting list. A search's filter is the FTS5 MATCH *or* a
  waiting message (`sqlite_condition`: at most about WAITING_MAX of them, which the LIKE tests),
  so a message is found from its commit on, as before. With 20,000 waiting at a million
  (bench/search_million.py --waiting 20000, rows of ~350 characters, 2 interleaved rounds at load
  ~1.6), a rare or absent term's first page takes 10-20 ms more (absent 8 -> 25 ms, `ref-0500001`
  25 -> 43, the slowest 46 ms); an in-memory LIKE over 20,000 texts of 2 KB took 10.5 ms.
  `on` indexes the stored messages (bench/search_million.py's million: 20 s of CPU, 45 s at a
  load of 6; the database 1.27 GB, 886 MB without), `off` drops it.
  A search (store.py) uses it when it is there: `sqlite_match` counts each trigram of the required
  text terms by reading at most RARE rowids of its doclist (then MANY) and ANDs the PICK rarest,
  since ANDing every trigram reads the whole doclists of the common ones (`ref` is in every message
  of bench/search_million.py: ~40 ms to read at 1M; an fts5vocab 'row' table gives the same counts
  by reading the same doclists whole, so capped counts are cheaper); with fewer than FEW candidates
  the page's statement reads them and sorts them, the unary `+` keeping SQLite from walking the
  (project, created) index newest first and probing the candidates, which reads all its million
  entries when the term is rare or absent (140-260 ms). The per-field `LIKE` stays the exact test.
  A term of one or two characters has no trigram of its own, but the indexed text ends with two
  newlines (migration 0029), so every character of a field is followed by two more and a message
  holding the term holds a trigram starting with it: `sqlite_match` counts the rows of VOCAB_TABLE
  (fts5vocab 'instance', a row per trigram and message holding it) in that range of terms, reading
  at most FEW of them (~1.3 ms warm at 1M); fewer than FEW (a rare or absent term) are the
  candidates, read and sorted as above, while a common one ("e", "or") gets no filter: the
  (project, created) index walked newest first fills its page at once. Beside a longer term, the
  filter with fewer candidates wins (the short term is counted up to the other's count).

  What it costs. Kept wholly in each message's transaction (the first form, off by default
  until migration 0027), the index cost the writer ~0.1 ms of CPU per message for the 2 KB of
  `X` lines that bench/smtp_acceptance.py sends. Measured with the store's BatchWriter (20,000
  messages on 20,000 stored, those lines and smtp-source's headers): no index 0.075 ms per
  message at batches of 20; an FTS row of empty text +0.013; the header fields alone +0.06
  (+0.033 in a later run); all seven fields +0.06-0.09. So the body's ~2,200 tokens (34
  distinct trigrams) cost ~0.03-0.045 and the rest is per distinct trigram of a message (the
  Message-ID's and addresses' ~15-70, each a new entry in FTS5's pending hash and a posting
  flushed to a segment, 0.5-1 µs; leaving the Message-ID out saved 0.005 of 0.06 with
  smtp-source's short ones, 0.013 of 0.09 with 24 random hex digits, single runs, so it stays and
  free text needs no second index for it), plus a segment written per transaction (~0.35-0.4
  ms). That last part is what the first form paid most: the capture door's group commits
  hold ~6 messages (mean 5.9, median 5, max 19 over a 20,000-message run of
  bench/smtp_acceptance.py, 20 sessions), and at batches of 5-6 the index cost +0.10-0.11 ms
  per message against +0.03 for the pending form (BatchWriter, same messages, load 2-6).
  English prose costs more, its postings (~800 distinct trigrams per 2 KB) being most of it:
  bench/sqlite_fulltext_write.py --profile prose --batch 6, single runs at load ~5, the first
  form +0.48 ms per message, the pending form +0.17 (draining every 50: +0.20, every 1,000:
  +0.16); an earlier measure of the first form gave 0.45 ms for English and 0.85 for random
  words. No form of this index avoids the postings, so mail richer in text than smtp-source's
  pays more than the A/B below shows. Not the cause: automerge 0, usermerge
  16 or crisismerge 100 (within noise), WAL growth (0.6 -> 0.7 KiB per message), the trigger
  (the empty row's +0.013 bounds what inserting the rows from the writer could save).
  Pre-computing each message's distinct trigrams outside the writer keeps the postings (the
  cost) and adds ~0.1 ms of Python per message elsewhere on the same two cores.

  In the capture door (bench/smtp_acceptance.py --only postroom --messages 20000 --sqlite-fulltext
  off|on, interleaved, CPU per message of the server and its writer process; smtp-source's, in
  another session, is not counted): the first form, 8 rounds at load 5-10, medians 448 -> 390
  msg/s (-13%; median of the paired rounds' ratios -16%), CPU 1.02 -> 1.12 ms; in a quieter hour
  -16% and -12%. The pending form, 2026-12-04, two sessions of 8 rounds (other builds running,
  single rounds swinging by +-20%): at load 5.5-7 medians 875 -> 852 msg/s (-2.6%; median of the
  paired ratios -8.6%), CPU 0.761 -> 0.800 ms (+5%); at load 4-6 1,261 -> 1,166 msg/s (-7.5%;
  paired -5.7%), CPU 0.729 -> 0.766 ms (+5%); once landed, 6 rounds at load 4-9, 1,188 -> 1,091
  msg/s (-8.1%; paired -8.2%), CPU 0.765 -> 0.795 ms (+4%). Hence on by default, with little
  margin under the bar. Measured again later that day on a quiet machine (load 1.3-2, 8 rounds):
  1,023 -> 900 msg/s (-12%), CPU 1.03-1.23 -> 1.16-1.30 ms. Again the next evening (6 rounds at
  load 2.7-4.5, a CI run beside the first five): 1,311 -> 1,179 msg/s (-10.1%; paired -8.0%),
  CPU 0.63 -> 0.70 ms. Where it goes (the same bench with
  each process's CPU read from /proc, 3 interleaved pairs at load 1.4-3, 533-718 msg/s, each pair
  -11% to -16%): the writer process 0.217-0.266 -> 0.314-0.386 ms a message (+0.10-0.12), the
  server 0.83-1.00 -> 0.89-1.10 (+0.06-0.10). py-spy finds the server's event loop busy ~95% of
  the time either way and no work of the index in it (its queries ~1% of the samples in both): the
  server is the bottleneck and loses to the writer's extra CPU on the two cores. In the writer,
  the drains: 16 ms of CPU and 25 ms wall each (99 drains of 200, 2.5 s of a 36 s run; the batch
  holding one took 28 ms, median, against 3.8 ms), 0.08 ms of CPU a message, nearly all FTS5's
  trigram tokenizer (~2,000 tokens for 2 KB, ~30-40 ns each; the header fields alone cost 0.007).
  Plain sqlite3, 20,000 such texts into this table in transactions of n, commit included, 3 runs
  each: n=6 0.104-0.120 ms a message, 50 0.064-0.083, 200 0.073-0.082, 1,000 0.057-0.071, 5,000
  0.055-0.062: larger drains save little. bench/sqlite_fulltext_write.py --batch 6 (load ~2):
  0.153-0.159 ms off, 0.245-0.255 on (+0.09, more than the +0.03 found first). Tried and not kept:
  the writer process indexing between batches when none waits (steps of 100 in transactions of
  their own, committed without fsync): its CPU rose by ~0.025 ms a message (0.361-0.432, median
  0.379, against 0.326-0.376, 0.354, for the drain in the batch, 6 interleaved rounds), and at
  load 2-10 the rates (199-988 msg/s) could show no wall gain.
  What did cost the rate was the drain's stall, not its CPU: the capture door's 20 sessions
  each wait for their 250, which waits for the commit of their batch, so ~25 ms of the write lock
  held by a drain every 200 messages (~100 ms at 2,000 msg/s) left the server idle for most of
  it. 2026-12-04, a quiet machine (load 0.5-1.8), 4 interleaved rounds of 20,000: off medians
  ~2,090 msg/s, on ~1,880 (-10%), on with the drain disabled ~2,170 (no loss). Hence the
  writer process indexes in its pauses (IDLE_DRAIN, IDLE_STEP) and a batch only past
  WAITING_MAX waiting. Then (6 interleaved rounds of 20,000, load 0.7-2): off 2,059-2,220, median
  2,154 msg/s; on 1,949-2,312, median 2,156 (paired ratios 0.90-1.08, median 1.00); CPU 0.50-0.52
  against 0.49-0.56 ms a message; the index then held all 20,000 messages 1.26-1.36 s after
  the burst (bench/smtp_acceptance.py prints it). A burst longer than WAITING_MAX first cost
  -4.5% and -19% over 60,000 messages (2 pairs): the drain of the oldest let SQLite's planner
  walk every message up to the last one drained (25-40 ms a drain); with the waiting list
  driving it (CROSS JOIN), 3 interleaved pairs of 60,000 at load 4-4.5 (a CI run beside): off
  937, 999, 1,034 msg/s, on 1,163, 954, 1,479 (CPU 0.55-0.61 and 0.54-0.60 ms a message), and
  3 pairs of 20,000 at load 2.8-3.9: off 1,904, 1,978, 2,019, on 1,887, 2,007, 2,093; the index
  held every message 0.8-1.2 s after the burst (0.035 ms of CPU a message of a 20,000 burst).
  The search side at 1M
  (bench/search_million.py --no-seed --no-count --runs 3, warm medians, load ~6; the index made by
  `postroom fulltext on`): a rare term 41 ms instead of 3.3 s, an absent one 15 ms instead of 1.3
  s, a rare `subject:` 39 ms instead of 2.3 s, `to:user77777@` 27 ms, `message-id:` 43 ms,
  `from:sender42@` 24 ms; with 199 messages waiting 41, 8, 17, 36, 48 and 23 ms. Terms of one and
  two characters scanned until migration 0029 (`qz` 0.87-2.9 s, `q` 0.93-1.9 s: absent, every
  message read); with the vocab table, 2026-12-04, interleaved runs at load 4-7
  (bench/search_million.py, same options): `qz` 9-23 ms, `q` 8-27 ms, their exact counts 2.5 and
  1.4 ms instead of 1.6 and 2.4 s; `or` and `e` (common, no filter) 4-11 ms as before. Migration
  0029 indexing that million again: 42.7 s wall, 28.2 s of CPU (load ~3). The two newlines add two
  trigrams per message; the writer did not measurably pay for them (bench/sqlite_fulltext_write.py
  --batch 6, interleaved at load 6-10, CPU medians: smtp 6 pairs 0.123 ms per message before,
  0.115 after; prose 3 pairs 0.343 and 0.328).

  Deleting an indexed message costs about what indexing it did (FTS5's 'delete' tokenizes the
  row's text again; SQLite 3.40 has no `contentless_delete`). So a bulk delete that takes at least
  RESET_MIN messages and at least half of all (`sqlite_reset_pays`: the API's delete-all, a delete
  by search, retention, a project's deletion) runs `sqlite_delete_resetting` in one write
  transaction: the per-row delete trigger dropped, the rows deleted, FTS5's 'delete-all' (no text
  read), the messages left indexed again, the waiting list cleared, the trigger made again; a
  failure or crash rolls it all back. Dropping and making the trigger again costs ~0.3 ms, the
  same as a WHEN on a one-row flag table (which every other delete would test and an existing
  database would need a migration for); the write transaction keeps other writers out, and other
  connections re-read the schema once. bench/sqlite_fulltext_delete.py, 20,000 messages of 2 KB of
  prose, 3 interleaved rounds at load ~2, CPU medians: delete-all 3.93 s -> 0.62 s (wall 4.14 ->
  0.73; without the index 0.66 s, 0.80 wall); with 10,000 more in another project left, 3.85 ->
  1.73 s (indexing the 10,000 again is most of it); deleting the project 3.37 -> 1.56 s; with
  20,000 left (half: still the reset) 3.69/4.01 -> 3.08/3.21 s; with 30,000 left (unindexed one by
  one either way) 4.95/5.02 vs 5.09/5.08 s, the estimate's counting lost in the noise. Delete-all
  of 100,000 (single runs): 23.8 -> 3.2 s of CPU, 38.5 -> 4.2 s wall (5.0-5.3 s of CPU without the
  index, in chunks). Before, the first figures were 6.3-6.4 s wall (4.0 s of CPU) at load ~5.
  Indexing again is cheaper up to ~1.5 times as many messages left as deleted; the rule stops at
  as many. The price: the delete is one transaction rather than chunks of 2,000 (store.py), so the
  writer of new messages waits for all of it (~0.035 ms a message). Smaller deletes (by ids, a
  search's few matches, retention's trickle) still unindex each message: ~0.17 ms of CPU per 2 KB
  of prose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import (
    ColumnElement,
    Integer,
    Text,
    column,
    func,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import Connection

from postroom.storage.schema import messages

# The indexed columns, in the order of the index expression.
FTS_COLUMNS = (
    "subject_lc",
    "from_text",
    "to_text",
    "cc_text",
    "bcc_text",
    "message_id_lc",
    "search_text",
)

SQLITE_TABLE = "messages_fts"  # dropped by migration 0020; `postroom fulltext on` makes it
# Its terms and the messages holding each (fts5vocab 'instance', migration 0029): the trigrams
# starting with a term of one or two characters, read as a range of terms.
VOCAB_TABLE = "messages_fts_vi"
PENDING_TABLE = "messages_fts_pending"  # messages not in SQLITE_TABLE yet (searched by LIKE)
# The writer indexes the waiting messages once it has written this many (batch.py): FTS5
# writes a segment per transaction (~0.4 ms), which a batch of ~6 messages paid alone.
DRAIN_EVERY = 200
# The writer process (writer_child.py) indexes them only once it has had no batch for
# IDLE_DRAIN seconds, IDLE_STEP at a time (the oldest first), so that a burst of mail is
# accepted without its indexing: a drain holds the write lock (~25 ms for DRAIN_EVERY), and
# the capture door's sessions wait on it for their 250. WAITING_MAX bounds what the LIKE of
# a search reads for them (20,000 at a million: +10-20 ms): past it, each batch indexes the
# DRAIN_EVERY oldest, as any batch did before.
IDLE_DRAIN = 0.1
IDLE_STEP = 500
WAITING_MAX = 20_000
PG_INDEX = "ix_messages_search_trgm"
# The expression of the PostgreSQL index; `pg_concat()` builds the same one for queries (the
# planner uses an expression index only for an identical expression).
PG_EXPRESSION = " || ".join(FTS_COLUMNS)

# Trigram indexes hold nothing for shorter terms.
MIN_TERM = 3

# PostgreSQL's index for terms of 1-2 characters (`postroom fulltext on`, off by default): a
# trigram index of the concatenation with SEPARATOR before and after each character ("ab" ->
# "0a0b0"), so a character's neighbours share a trigram with it ("a0b": the pair "ab"; "0a0":
# "a" alone). `pg_interleaved()` builds the same expression for queries.
PG_SHORT_INDEX = "ix_messages_search_short"
SEPARATOR = "0"  # a character pg_trgm counts as part of a word, so trigrams span it
PG_SHORT_EXPRESSION = f"regexp_replace({PG_EXPRESSION}, '', '{SEPARATOR}', 'g')"

_c = messages.c
T = TypeVar("T")


# Trigram counts are read from the doclists, at most RARE rowids each, then MANY for the ones
# at RARE when fewer than PICK are under it; the MATCH ANDs the PICK rarest trigrams.
RARE = 2_000
MANY = 50_000
PICK = 3
# A MATCH with fewer candidates than FEW drives the page: its rows are read and sorted,
# rather than the (project, created) index walked newest first probing the candidates.
FEW = 10_000


@dataclass(frozen=True)
class FtsFilter:
    """The index's filter for a search: an FTS5 MATCH expression of trigrams or, when
    `prefix`, the messages holding a trigram that starts with `match` (a term of fewer than
    MIN_TERM characters, read from VOCAB_TABLE); `few`: it has fewer than FEW candidates."""

    match: str
    few: bool
    prefix: bool = False


def _sqlite_text(row: str) -> str:
    """The indexed text of a `messages` row (`new`, `old` or the table): the fields joined by
    newlines, as in the PostgreSQL expression (a term straddling two of them is a false
    candidate that the per-field LIKE drops), and two newlines after the last (migration
    0029), so that every character of a field is followed by two more: a message holding a
    term of one or two characters holds a trigram starting with it (`sqlite_match`). The
    table is contentless: a 'delete' must give this text exactly, so every statement that
    indexes or unindexes a row builds it here."""
    fields = " || char(10) || ".join(f"{row}.{name}" for name in FTS_COLUMNS)
    return f"{fields} || char(10) || char(10)"


def sqlite_present(conn: Connection) -> bool:
    """Whether the SQLite database has the FTS5 table (`postroom fulltext on` made it)."""
    found = conn.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :n"),
        {"n": SQLITE_TABLE},
    ).first()
    return found is not None


def sqlite_create_statements(index_stored: bool = True) -> list[str]:
    """The contentless FTS5 trigram table, the table of messages waiting to be indexed, the
    triggers (`sqlite_trigger_statements`) and, if `index_stored`, the statement indexing the
    rows already stored. Contentless: a 'delete' gives the text indexed, which the triggers
    rebuild from the row; `detail=none`: no positions (only which messages hold a trigram);
    `case_sensitive 1`: the text and the terms are lower-cased in Python already."""
    made = [
        f"CREATE VIRTUAL TABLE {SQLITE_TABLE} USING fts5(body, content='', detail=none, "
        "columnsize=0, tokenize='trigram case_sensitive 1')",
        f"CREATE TABLE {PENDING_TABLE} (seq INTEGER PRIMARY KEY)",
        *sqlite_trigger_statements(),
        sqlite_vocab_statement(),
    ]
    if index_stored:
        made.append(
            f"INSERT INTO {SQLITE_TABLE}(rowid, body) SELECT seq, {_sqlite_text('messages')} "
            "FROM messages"
        )
    return made


def sqlite_vocab_statement() -> str:
    """The fts5vocab table over the FTS5 table (one row per trigram and message holding it;
    reads the doclists of the terms asked for, nothing stored)."""
    return (
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {VOCAB_TABLE} "
        f"USING fts5vocab({SQLITE_TABLE}, 'instance')"
    )


def sqlite_reindex_statements() -> list[str]:
    """Index every message again with the text `_sqlite_text` builds now, in the caller's
    transaction (migration 0029: the text gained its two last newlines): the triggers
    dropped, the FTS5 table emptied by its 'delete-all' (no text needed), every message
    indexed, the waiting list cleared, the triggers and the vocab table made."""
    table, pending = SQLITE_TABLE, PENDING_TABLE
    return [
        *(f"DROP TRIGGER IF EXISTS {name}" for name in _TRIGGERS),
        f"INSERT INTO {table}({table}) VALUES ('delete-all')",
        f"INSERT INTO {table}(rowid, body) SELECT seq, {_sqlite_text('messages')} FROM messages",
        f"CREATE TABLE IF NOT EXISTS {pending} (seq INTEGER PRIMARY KEY)",
        f"DELETE FROM {pending}",
        *sqlite_trigger_statements(),
        sqlite_vocab_statement(),
    ]


_TRIGGERS = ("messages_fts_insert", "messages_fts_delete", "messages_fts_update")


def sqlite_trigger_statements() -> list[str]:
    """The triggers that keep the index in the transaction of each insert, delete and text
    update of `messages`. A new message only enters PENDING_TABLE (its seq, one B-tree
    entry); `sqlite_drain_statements` moves the waiting ones into the FTS5 table, which the
    writer does later (batch.py, writer_child.py). A deleted message leaves whichever of the
    two holds it; a text update takes an indexed message out of the FTS5 table and back into
    PENDING_TABLE (the drain reads its new text)."""
    table, pending = SQLITE_TABLE, PENDING_TABLE
    old = _sqlite_text("old")
    waiting = f"SELECT 1 FROM {pending} WHERE seq = old.seq"
    unindex = (
        f"INSERT INTO {table}({table}, rowid, body) SELECT 'delete', old.seq, {old} "
        f"WHERE NOT EXISTS ({waiting});"
    )
    return [
        f"CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
        f"INSERT INTO {pending}(seq) VALUES (new.seq); END",
        f"CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN {unindex} "
        f"DELETE FROM {pending} WHERE seq = old.seq; END",
        f"CREATE TRIGGER messages_fts_update AFTER UPDATE OF {', '.join(FTS_COLUMNS)} "
        f"ON messages BEGIN {unindex} INSERT OR IGNORE INTO {pending}(seq) VALUES (new.seq); END",
    ]


def sqlite_drain_statements() -> list[str]:
    """Index the messages waiting in PENDING_TABLE, in the caller's transaction (one FTS5
    segment for all of them)."""
    table, pending = SQLITE_TABLE, PENDING_TABLE
    return [
        f"INSERT INTO {table}(rowid, body) SELECT messages.seq, {_sqlite_text('messages')} "
        f"FROM {pending} JOIN messages ON messages.seq = {pending}.seq",
        f"DELETE FROM {pending}",
    ]


def sqlite_drain(conn: Connection) -> bool:
    """Index the waiting messages if the database has the index; whether it has."""
    if not sqlite_present(conn):
        return False
    for statement in sqlite_drain_statements():
        conn.exec_driver_sql(statement)
    return True


def sqlite_drain_oldest(conn: Connection, limit: int) -> int:
    """Index at most `limit` of the waiting messages, the oldest first, in the caller's
    transaction; how many still wait (0 without the index)."""
    if not sqlite_present(conn):
        return 0
    table, pending = SQLITE_TABLE, PENDING_TABLE
    last = conn.exec_driver_sql(
        f"SELECT max(seq) FROM (SELECT seq FROM {pending} ORDER BY seq LIMIT ?)", (limit,)
    ).scalar()
    if last is not None:
        # CROSS JOIN: the waiting list drives (SQLite's planner otherwise walked `messages` up
        # to `last`, every message indexed before included, probing the list for each).
        conn.exec_driver_sql(
            f"INSERT INTO {table}(rowid, body) SELECT messages.seq, {_sqlite_text('messages')} "
            f"FROM {pending} CROSS JOIN messages ON messages.seq = {pending}.seq "
            f"WHERE {pending}.seq <= ?",
            (last,),
        )
        conn.exec_driver_sql(f"DELETE FROM {pending} WHERE seq <= ?", (last,))
    return int(conn.exec_driver_sql(f"SELECT count(*) FROM {pending}").scalar_one())


# A bulk delete empties the index and indexes what is left instead of deleting the victims from
# it one by one (`sqlite_delete_resetting`) when it deletes at least RESET_MIN messages and
# leaves at most as many as it deletes (indexing a message cost ~0.11 ms of CPU, unindexing one
# ~0.17, 2 KB of prose: bench/sqlite_fulltext_delete.py).
RESET_MIN = 1_000
_DELETE_TRIGGER = "messages_fts_delete"


def sqlite_reset_pays(conn: Connection, victims: ColumnElement[bool]) -> bool:
    """Whether deleting the messages `victims` selects is cheaper by emptying the index and
    indexing the messages left again than by unindexing the victims one by one: the database
    has the index, and the delete takes at least RESET_MIN messages and at least half of them.
    A cost estimate only (`sqlite_delete_resetting` is right whatever it deletes): the victims
    are counted up to half the messages, so a small delete counts only its own."""
    if not sqlite_present(conn):
        return False
    total = int(conn.execute(select(func.count()).select_from(messages)).scalar_one())
    half = (total + 1) // 2
    if total < RESET_MIN:
        return False
    going = select(literal(1)).where(victims).limit(half).subquery()
    counted = int(conn.execute(select(func.count()).select_from(going)).scalar_one())
    return counted >= max(half, RESET_MIN)


def sqlite_delete_resetting(conn: Connection, delete_rows: Callable[[], T]) -> T:
    """Run `delete_rows` (deletes from `messages`, in the caller's write transaction) with the
    per-row delete trigger dropped, then empty the FTS5 table (FTS5's 'delete-all': no text
    tokenized again), index every message left and clear the waiting list, and put the
    trigger back: one transaction, so a failure or a crash leaves the index as it was. The
    write transaction (BEGIN IMMEDIATE) keeps every other writer out meanwhile; readers keep
    their snapshot and re-read the schema after it."""
    table, pending = SQLITE_TABLE, PENDING_TABLE
    if not sqlite_present(conn):  # `postroom fulltext off` since the estimate
        return delete_rows()
    conn.exec_driver_sql(f"DROP TRIGGER {_DELETE_TRIGGER}")
    result = delete_rows()
    conn.exec_driver_sql(f"INSERT INTO {table}({table}) VALUES ('delete-all')")
    conn.exec_driver_sql(
        f"INSERT INTO {table}(rowid, body) SELECT seq, {_sqlite_text('messages')} FROM messages"
    )
    conn.exec_driver_sql(f"DELETE FROM {pending}")
    (trigger,) = (s for s in sqlite_trigger_statements() if f" {_DELETE_TRIGGER} " in s)
    conn.exec_driver_sql(trigger)
    return result


def trigrams(needle: str) -> list[str]:
    """The distinct trigrams of `needle`, in order (none under MIN_TERM characters)."""
    return list(dict.fromkeys(needle[i : i + 3] for i in range(len(needle) - 2)))


def _quoted(trigram: str) -> str:
    return '"' + trigram.replace('"', '""') + '"'


_COUNT = text(
    f"SELECT count(*) FROM (SELECT 1 FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH :m LIMIT :n)"
)


# The candidates of a MATCH counted up to :n, and the seq of the last one read (FTS5 reads
# them in ascending order): `sqlite_sparsest`.
_SURVEY = text(
    f"SELECT count(*), coalesce(max(rowid), 0) FROM (SELECT rowid FROM {SQLITE_TABLE} "
    f"WHERE {SQLITE_TABLE} MATCH :m ORDER BY rowid LIMIT :n)"
)
_SPAN = text(
    "SELECT coalesce((SELECT min(seq) FROM messages), 0), "
    "coalesce((SELECT max(seq) FROM messages), 0)"
)


def _count(conn: Connection, match: str, cap: int) -> int:
    """The messages `match` finds, counted up to `cap` (reads at most `cap` rowids)."""
    return int(conn.execute(_COUNT, {"m": match, "n": cap}).scalar_one())


def sqlite_match(conn: Connection, needles: Sequence[str]) -> FtsFilter | None:
    """An FTS5 filter true of every message holding all `needles` (lower-cased terms, each
    contained in some indexed field); None when it would not narrow the search.

    A term of MIN_TERM characters or more: a message holding it holds each of its trigrams,
    so any of them is a sound filter (`_trigram_match`). A shorter term: a message holding it
    holds a trigram starting with it (the indexed text ends with two newlines), so the
    messages of that range of VOCAB_TABLE's terms are a sound filter; it is counted up to
    FEW (reading at most that many rows) and used only when fewer, so a common short term
    ("e") leaves the page to the (project, created) index walked newest first, which fills
    it at once. The filter with the fewest candidates wins. The exact LIKE decides."""
    found, cap = _trigram_match(conn, [n for n in needles if len(n) >= MIN_TERM])
    for needle in dict.fromkeys(n for n in needles if 0 < len(n) < MIN_TERM):
        counted = _count_prefix(conn, needle, cap)
        if counted < cap:
            found, cap = FtsFilter(needle, True, prefix=True), counted
    return found


def _trigram_match(conn: Connection, needles: Sequence[str]) -> tuple[FtsFilter | None, int]:
    """The MATCH of the trigrams of `needles`, and a bound of its candidates when it has
    fewer than FEW (else FEW); None when `needles` have no trigram.

    ANDing all the trigrams reads the whole doclists of the common ones (a trigram like "ord"
    is in a quarter of the messages, and each one costs ~40 ms at a million). So each trigram
    is counted first, reading at most RARE rowids of its doclist: the MATCH ANDs the PICK
    rarest of those under RARE; when none is, they are counted up to MANY, and the MATCH ANDs
    the PICK rarest under MANY (or PICK of them all)."""
    grams = list(dict.fromkeys(g for n in needles for g in trigrams(n)))
    if not grams:
        return None, FEW
    counts = {g: _count(conn, _quoted(g), RARE) for g in grams}
    chosen = sorted((g for g in grams if counts[g] < RARE), key=counts.__getitem__)[:PICK]
    if chosen:  # fewer than RARE candidates: the common trigrams would only add reading
        if counts[chosen[0]] == 0:
            chosen = chosen[:1]
        return FtsFilter(" ".join(_quoted(g) for g in chosen), True), counts[chosen[0]]
    counts = {g: _count(conn, _quoted(g), MANY) for g in grams}
    chosen = sorted((g for g in grams if counts[g] < MANY), key=counts.__getitem__)[:PICK]
    match = " ".join(_quoted(g) for g in chosen or grams[:PICK])
    counted = _count(conn, match, FEW)
    return FtsFilter(match, counted < FEW), counted


def sqlite_sparsest(conn: Connection, needles: Sequence[str]) -> tuple[FtsFilter, int] | None:
    """For a search within a tag's messages (store.py `_tag_walk`): an FTS5 filter true of
    every message holding all `needles` and an estimate of its candidates, from at most RARE
    rowids read of each trigram (and, for a term of 1-2 characters, of its range of terms);
    None when none narrows (no trigram, and only common short terms).

    With fewer than RARE candidates, the filter is the one `sqlite_match` would choose and
    `few`, its count exact. Otherwise it is the trigram whose RARE-th candidate has the
    highest seq (FTS5 gives rowids in ascending order): the sparsest among the oldest
    messages, its estimate RARE scaled by the span of all seqs over that one's.
    `sqlite_match` counts each trigram up to MANY instead, ~7 ms a common trigram at a
    million messages (a `from:` domain has 13), where this reads RARE of each; the estimate
    only picks the trigram and the way its candidates meet the tag's messages, the LIKE
    deciding."""
    grams = list(dict.fromkeys(g for n in needles if len(n) >= MIN_TERM for g in trigrams(n)))
    survey = {g: conn.execute(_SURVEY, {"m": _quoted(g), "n": RARE}).one() for g in grams}
    counts = {g: int(found[0]) for g, found in survey.items()}
    best: tuple[FtsFilter, int] | None = None
    rare = sorted((g for g in grams if counts[g] < RARE), key=counts.__getitem__)[:PICK]
    if rare:
        chosen = rare[:1] if counts[rare[0]] == 0 else rare
        best = FtsFilter(" ".join(_quoted(g) for g in chosen), True), counts[rare[0]]
    for needle in dict.fromkeys(n for n in needles if 0 < len(n) < MIN_TERM):
        cap = RARE if best is None else best[1]
        counted = _count_prefix(conn, needle, cap)
        if counted < cap:
            best = FtsFilter(needle, True, prefix=True), counted
    if best is not None or not grams:
        return best
    sparsest = max(grams, key=lambda g: int(survey[g][1]))
    low, high = (int(v) for v in conn.execute(_SPAN).one())
    estimate = RARE * (high - low + 1) // max(1, int(survey[sparsest][1]) - low + 1)
    return FtsFilter(_quoted(sparsest), False), estimate


# The terms of VOCAB_TABLE starting with :fts_lo (`_prefix_bounds`), one row per term and
# message holding it.
_PREFIX = f"SELECT doc FROM {VOCAB_TABLE} WHERE term >= :fts_lo AND term <= :fts_hi"
_COUNT_PREFIX = text(f"SELECT count(*) FROM ({_PREFIX} LIMIT :n)")


def _prefix_bounds(prefix: str) -> dict[str, str]:
    """The range of the trigrams starting with `prefix` (one or two characters): FTS5 orders
    its terms by their UTF-8 bytes, which is the order of the code points, U+10FFFF last."""
    return {"fts_lo": prefix, "fts_hi": prefix + "\U0010ffff" * 2}


def _count_prefix(conn: Connection, prefix: str, cap: int) -> int:
    """The index's rows of a trigram starting with `prefix`, counted up to `cap` (a message
    holding several such trigrams counts once for each: an overestimate)."""
    found = conn.execute(_COUNT_PREFIX, {**_prefix_bounds(prefix), "n": cap}).scalar_one()
    return int(found)


def sqlite_condition(
    found: FtsFilter,
    seq: ColumnElement[int] | None = None,
    within: tuple[str, str] | None = None,
) -> ColumnElement[bool]:
    """`seq` (`messages.seq` by default) is among the candidates of `found`
    (`sqlite_match`), or waits to be indexed (at most about WAITING_MAX messages, which the
    LIKE then tests). SQLite reads the candidates into a temporary index that `seq` probes.

    `within` (project, lower-cased tag), for a MATCH: the candidates intersected first with
    the tag's messages, in SQL as `MATCH INTERSECT (the tag's seqs) ORDER BY 1`, which SQLite
    runs as a merge of the two in seq order (FTS5 gives its rowids in that order, the tag's
    are sorted), so only the intersection is put in the temporary index: for a common term
    (250,000 candidates at a million messages) that costs ~35 ms against ~90 for the index
    of all the candidates (store.py `_tag_walk`)."""
    waiting = f"UNION ALL SELECT seq FROM {PENDING_TABLE}"
    if found.prefix:
        clause = text(f"{_PREFIX} {waiting}").bindparams(**_prefix_bounds(found.match))
    elif within is None:
        clause = text(
            f"SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH :fts_match {waiting}"
        ).bindparams(fts_match=found.match)
    else:
        # The waiting messages too, in the merge (SQLite plans MERGE (UNION ALL) of the
        # intersection and the table's rowids, both in order).
        project, tag = within
        clause = text(
            f"SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH :fts_match "
            "INTERSECT SELECT seq FROM message_tags WHERE project = :fts_project "
            f"AND tag_lc = :fts_tag {waiting} ORDER BY 1"
        ).bindparams(fts_match=found.match, fts_project=project, fts_tag=tag)
    return (_c.seq if seq is None else seq).in_(clause.columns(column("seq", Integer)))


def sqlite_drop_statements() -> list[str]:
    """What removes the FTS5 table, its triggers and the table of waiting messages (any form:
    also the first one of migration 0018)."""
    return [
        "DROP TRIGGER IF EXISTS messages_fts_update",
        "DROP TRIGGER IF EXISTS messages_fts_delete",
        "DROP TRIGGER IF EXISTS messages_fts_insert",
        f"DROP TABLE IF EXISTS {VOCAB_TABLE}",
        f"DROP TABLE IF EXISTS {SQLITE_TABLE}",
        f"DROP TABLE IF EXISTS {PENDING_TABLE}",
    ]


def pg_create_statements() -> list[str]:
    """The trigram index of terms of MIN_TERM characters or more (migration 0018)."""
    return [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        f"CREATE INDEX {PG_INDEX} ON messages USING gin (({PG_EXPRESSION}) gin_trgm_ops)",
    ]


def pg_drop_statements() -> list[str]:
    return [f"DROP INDEX IF EXISTS {PG_INDEX}"]


def pg_short_create_statement() -> str:
    """Makes the index of terms of 1-2 characters without keeping writers out (outside a
    transaction; a failure leaves it invalid: `pg_short_present` is false, drop it first)."""
    return (
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {PG_SHORT_INDEX} ON messages "
        f"USING gin (({PG_SHORT_EXPRESSION}) gin_trgm_ops)"
    )


def pg_short_drop_statement() -> str:
    return f"DROP INDEX CONCURRENTLY IF EXISTS {PG_SHORT_INDEX}"


_SHORT_STATE = text(
    "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(:name)"
).bindparams(name=PG_SHORT_INDEX)


def pg_short_state(conn: Connection) -> bool | None:
    """Whether the database has the index of short terms: None if not, False if a failed
    `CREATE INDEX CONCURRENTLY` left it invalid (the planner ignores it), True if usable."""
    found = conn.execute(_SHORT_STATE).first()
    return None if found is None else bool(found[0])


def pg_short_present(conn: Connection) -> bool:
    """Whether PostgreSQL's index of short terms is there and usable: a search adds its
    condition only then, since without the index the planner would compute the interleaved
    text of every message it walks (~0.1 us a character)."""
    return pg_short_state(conn) is True


def _like_escaped(needle: str) -> str:
    return needle.replace("/", "//").replace("%", "/%").replace("_", "/_")


def short_pattern(needle: str) -> str | None:
    """The LIKE pattern (escape "/") on `pg_interleaved()` that every row holding `needle`
    matches: "ab" -> "%a0b%" (the trigram "a0b"), "a" -> "%0a0%"; None unless `needle` has
    1-2 characters, each a letter or an ASCII digit (pg_trgm's word characters): a pattern
    with another character gets only trigrams of a word's start or end ("a." -> "a0 "), held
    by nearly every message, and each candidate's recheck computes the expression again."""
    if not 0 < len(needle) < MIN_TERM or not all(_word(ch) for ch in needle):
        return None
    inner = SEPARATOR.join(needle)
    return f"%{SEPARATOR}{inner}{SEPARATOR}%" if len(needle) == 1 else f"%{inner}%"


def _word(ch: str) -> bool:
    return ch.isalpha() or ch in "0123456789"


def indexed_condition(
    columns: tuple[ColumnElement[str], ...], needle: str, backend: str, short: bool = False
) -> ColumnElement[bool] | None:
    """A condition the index answers, true of every row where one of `columns` (indexed text
    columns) contains `needle` (lower-cased); None when the index cannot help (SQLite; a
    term under MIN_TERM characters unless `short`, or one `short_pattern` refuses). The
    PostgreSQL condition is on the concatenation, so only a pre-filter; a short term's is
    on the interleaved concatenation (PG_SHORT_INDEX)."""
    if backend != "postgresql":
        return None
    if len(needle) >= MIN_TERM:
        return pg_concat().like(f"%{_like_escaped(needle)}%", escape="/")
    pattern = short_pattern(needle) if short else None
    return None if pattern is None else pg_interleaved().like(pattern)


def pg_concat() -> ColumnElement[str]:
    expr: ColumnElement[str] = _c[FTS_COLUMNS[0]]
    for name in FTS_COLUMNS[1:]:
        expr = expr.op("||")(_c[name])
    return expr


def pg_interleaved() -> ColumnElement[str]:
    """PG_SHORT_EXPRESSION, its constants written as literals (not parameters), so that the
    planner finds it identical to the index's."""
    return func.regexp_replace(
        pg_concat(),
        literal_column("''"),
        literal_column(f"'{SEPARATOR}'"),
        literal_column("'g'"),
        type_=Text,
    )


__all__ = [
    "DRAIN_EVERY",
    "FTS_COLUMNS",
    "IDLE_DRAIN",
    "IDLE_STEP",
    "PENDING_TABLE",
    "PG_EXPRESSION",
    "PG_INDEX",
    "PG_SHORT_EXPRESSION",
    "PG_SHORT_INDEX",
    "RESET_MIN",
    "SEPARATOR",
    "SQLITE_TABLE",
    "VOCAB_TABLE",
    "WAITING_MAX",
    "FtsFilter",
    "indexed_condition",
    "pg_create_statements",
    "pg_drop_statements",
    "pg_short_create_statement",
    "pg_short_drop_statement",
    "pg_short_present",
    "pg_short_state",
    "short_pattern",
    "sqlite_condition",
    "sqlite_create_statements",
    "sqlite_delete_resetting",
    "sqlite_drain",
    "sqlite_drain_oldest",
    "sqlite_drain_statements",
    "sqlite_drop_statements",
    "sqlite_match",
    "sqlite_present",
    "sqlite_reindex_statements",
    "sqlite_reset_pays",
    "sqlite_sparsest",
    "sqlite_trigger_statements",
    "sqlite_vocab_statement",
    "trigrams",
]
