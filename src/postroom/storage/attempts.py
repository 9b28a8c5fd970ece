"""Delivery attempts: table `delivery_attempts`, one row per attempt of one recipient.

Written by the queue's reports (queue.py) in the transaction that records the attempt's result
on the queue entry; read per message for the API and the UI. Rows belong to their queue entry
and go with it: when a finished message is deleted (store.delete, retention) and when its
project is deleted. Times are integer microseconds since the epoch (UTC); the duration too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from postroom.core.types import Attempt, AttemptRecord
from postroom.storage import codec
from postroom.storage.schema import SeqType, metadata

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("entry_id", BigInteger, nullable=False),
    Column("message_id", String(26), nullable=False),
    Column("project", String(100), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("started_us", BigInteger, nullable=False),
    Column("duration_us", BigInteger, nullable=False),
    Column("mx_host", Text, nullable=False),
    Column("ip", String(64), nullable=False),
    Column("port", Integer, nullable=False),
    Column("local_address", String(80), nullable=False),
    Column("tls_version", String(32), nullable=False),
    Column("tls_cipher", String(128), nullable=False),
    Column("code", Integer, nullable=False),
    Column("enhanced", String(16), nullable=False),
    Column("reply", Text, nullable=False),
    Column("earlier", Text, nullable=False),  # JSON list of strings
    Column("tls_policy", Text, nullable=False, server_default=""),  # MTA-STS and what it gave
)
Index("ix_delivery_attempts_message_id", delivery_attempts.c.message_id)
Index("ix_delivery_attempts_project", delivery_attempts.c.project)

_a = delivery_attempts.c


def row(
    entry_id: int,
    message_id: str,
    project: str,
    recipient: str,
    outcome: str,
    attempt: Attempt,
) -> dict[str, Any]:
    """The `delivery_attempts` row of one attempt."""
    return {
        "entry_id": entry_id,
        "message_id": message_id,
        "project": project,
        "recipient": recipient,
        "outcome": outcome,
        "started_us": codec.to_micros(attempt.started),
        "duration_us": max(0, round(attempt.duration * 1_000_000)),
        "mx_host": attempt.mx_host,
        "ip": attempt.ip,
        "port": attempt.port,
        "local_address": attempt.local_address,
        "tls_version": attempt.tls_version,
        "tls_cipher": attempt.tls_cipher,
        "code": attempt.code,
        "enhanced": attempt.enhanced,
        "reply": attempt.reply,
        "earlier": json.dumps(list(attempt.earlier), ensure_ascii=False),
        "tls_policy": attempt.tls_policy,
    }


def write(
    conn: Connection,
    entry_id: int,
    message_id: str,
    project: str,
    recipient: str,
    outcome: str,
    attempt: Attempt,
) -> None:
    """Insert one attempt in the caller's transaction."""
    write_rows(conn, [row(entry_id, message_id, project, recipient, outcome, attempt)])


def write_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert attempts (rows from `row`) in the caller's transaction, in one statement."""
    if rows:
        conn.execute(insert(delivery_attempts), list(rows))


def _record(found: Any) -> AttemptRecord:
    try:
        earlier = tuple(str(e) for e in json.loads(found.earlier))
    except (ValueError, TypeError):
        earlier = ()
    return AttemptRecord(
        id=int(found.id),
        entry_id=int(found.entry_id),
        message_id=found.message_id,
        recipient=found.recipient,
        outcome=found.outcome,
        attempt=Attempt(
            started=codec.from_micros(found.started_us),
            duration=found.duration_us / 1_000_000,
            code=int(found.code),
            enhanced=found.enhanced,
            reply=found.reply,
            mx_host=found.mx_host,
            ip=found.ip,
            port=int(found.port),
            local_address=found.local_address,
            tls_version=found.tls_version,
            tls_cipher=found.tls_cipher,
            earlier=earlier,
            tls_policy=found.tls_policy,
        ),
    )


def of_message(conn: Connection, project: str, message_id: str) -> list[AttemptRecord]:
    """The attempts of one message of the project, oldest first."""
    stmt = (
        select(delivery_attempts)
        .where(_a.project == project, _a.message_id == message_id)
        .order_by(_a.id)
    )
    return [_record(r) for r in conn.execute(stmt)]


def delete_of_messages(conn: Connection, message_ids: ColumnElement[Any] | Sequence[str]) -> None:
    """Delete the attempts of the messages `message_ids` (a list or a subquery) selects."""
    conn.execute(delete(delivery_attempts).where(_a.message_id.in_(message_ids)))


def delete_of_project(conn: Connection, project: str) -> None:
    conn.execute(delete(delivery_attempts).where(_a.project == project))
