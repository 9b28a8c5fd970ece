"""The message tables (SQLAlchemy Core). Migrations in `migrations/versions` create them.

Design notes:

* `messages` holds everything listing and search need, never the raw bytes. Its integer
  primary key `seq` is the insertion order (tie-break of equal `created`) and keeps secondary
  indexes compact; `id` is the public 26-character identifier.
* Listing is newest first: `ORDER BY created_us DESC, seq DESC` served by
  `ix_messages_project_created` (project, created_us, seq), which also serves retention by age
  and count. `ix_messages_project_read` (project, read) answers total/unread with an index-only
  count. `ix_messages_project_attached` (project, created_us, seq, read) over the messages
  with an attachment serves `has:attachment`: its page and its counts without reading messages.
* Times are integer microseconds since the Unix epoch (UTC): same type and ordering on both
  backends, no per-row type processing in the hot insert path.
* Structured fields (addresses, attachments, envelope parameters, warnings) are compact JSON
  text. Search columns (`*_text`, `*_lc`, `search_text`) are lower-cased in Python at ingest,
  so a case-insensitive substring test is a plain `LIKE` on both backends.
* `message_raw` holds the zstd-compressed message, one row per message, keyed by message id.
* `message_tags` holds one row per (message, tag): the tag as spelled and lower-cased;
  matching is on the lower-cased name, the spelling is kept for display. Each row also holds
  its message's page order key (`created_us`, `seq`: a message's never change), so
  `ix_message_tags_project_tag` (project, tag_lc, created_us, seq) lists a tag's messages
  newest first without reading them (storage/tag_search.py): every writer of tags copies them
  from the message (migration 0030 filled the rows stored before).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    false,
    literal_column,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGSERIAL on PostgreSQL, INTEGER PRIMARY KEY (the rowid) on SQLite.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

messages = Table(
    "messages",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("id", String(26), nullable=False, unique=True),
    Column("project", String(100), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("read", Boolean(create_constraint=False), nullable=False, server_default=false()),
    Column("status", String(32), nullable=False),
    Column("username", Text, nullable=True),
    # envelope
    Column("mail_from", Text, nullable=False),
    Column("recipients", Text, nullable=False),  # JSON list of addresses
    Column("envelope_params", Text, nullable=False),  # JSON {"mail": {...}, "rcpt": [{...}]}
    # parsed summary
    Column("from_json", Text, nullable=True),  # JSON [name, address] or NULL
    Column("to_json", Text, nullable=False),  # JSON [[name, address], ...]
    Column("cc_json", Text, nullable=False),
    Column("bcc_json", Text, nullable=False),
    Column("reply_to_json", Text, nullable=False),
    Column("from_text", Text, nullable=False),  # lower-cased "name <address>" lines
    Column("to_text", Text, nullable=False),
    Column("cc_text", Text, nullable=False),
    Column("bcc_text", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("subject_lc", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("message_id_lc", Text, nullable=False),
    Column("date", Text, nullable=True),  # ISO 8601 with the header's offset
    Column("snippet", Text, nullable=False),
    Column("attachment_count", Integer, nullable=False),
    Column("attachments", Text, nullable=False),  # JSON list of objects
    Column("header_tags", Text, nullable=False),  # JSON list
    Column("return_path", Text, nullable=False),
    Column("defects", Text, nullable=False),  # JSON list
    Column("warnings", Text, nullable=False),  # JSON list
    # Last, so that reading any other column never walks a long body's overflow pages.
    Column("search_text", Text, nullable=False),  # lower-cased body text
)

Index("ix_messages_project_created", messages.c.project, messages.c.created_us, messages.c.seq)
Index("ix_messages_project_read", messages.c.project, messages.c.read)
# has:attachment (search_sql.py spells the condition with the literal 0 that the planners need
# to use a partial index).
_ATTACHED = messages.c.attachment_count > literal_column("0")
Index(
    "ix_messages_project_attached",
    messages.c.project,
    messages.c.created_us,
    messages.c.seq,
    messages.c.read,
    sqlite_where=_ATTACHED,
    postgresql_where=_ATTACHED,
)

message_raw = Table(
    "message_raw",
    metadata,
    Column(
        "message_id",
        String(26),
        ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("data", LargeBinary, nullable=False),  # zstd frame with the content size
)

message_tags = Table(
    "message_tags",
    metadata,
    Column(
        "message_id",
        String(26),
        ForeignKey("messages.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("project", String(100), nullable=False),
    Column("tag", Text, nullable=False),
    Column("tag_lc", Text, nullable=False),
    # The message's order key (messages.created_us, messages.seq), copied by the writers.
    Column("created_us", BigInteger, nullable=False),
    Column("seq", SeqType, nullable=False),
    PrimaryKeyConstraint("message_id", "tag_lc"),
)

Index(
    "ix_message_tags_project_tag",
    message_tags.c.project,
    message_tags.c.tag_lc,
    message_tags.c.created_us,
    message_tags.c.seq,
)

# Each project's total and unread messages: rows whose sums are the counts, kept by triggers on
# `messages` (storage/message_counts.py, migration 0022).
message_counts = Table(
    "message_counts",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("project", String(100), nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("unread", BigInteger, nullable=False),
)
Index("ix_message_counts_project", message_counts.c.project)

# Each (project, tag)'s total and unread messages: rows whose sums are the counts, kept by
# triggers on `message_tags` and `messages` (storage/tag_counters.py, migration 0024).
tag_counts = Table(
    "tag_counts",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("project", String(100), nullable=False),
    Column("tag_lc", Text, nullable=False),
    Column("tag", Text, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("unread", BigInteger, nullable=False),
)
Index("ix_tag_counts_project_tag", tag_counts.c.project, tag_counts.c.tag_lc, tag_counts.c.tag)

__all__ = [
    "message_counts",
    "message_raw",
    "message_tags",
    "messages",
    "metadata",
    "tag_counts",
]
