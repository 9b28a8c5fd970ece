"""Migration 0003 on a database that has queue entries written by revision 0002: they keep
their state, gain their routing domain and DSN parameters from the message's envelope, and
deleting their message no longer deletes them."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import delete, insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from tests.integration.storage.factory import make_message

from postroom.core.clock import FakeClock
from postroom.core.errors import PendingDeliveries
from postroom.core.types import QUEUED, Delivery, NewMessage
from postroom.storage import codec, migrate, open_store, resolve_target
from postroom.storage.engine import writer_engine
from postroom.storage.queue import queue_entries
from postroom.storage.schema import message_raw, messages


def _insert_0002(conn: Connection, message: NewMessage, attempts: int = 0) -> None:
    """What revision 0002's writer stored for a live message: one row per distinct recipient
    with message, project, recipient, status and times (no domain, no DSN parameters)."""
    row = dict(zip(codec.MESSAGE_COLUMNS, codec.message_row(message), strict=True))
    conn.execute(insert(messages).values(row))
    conn.execute(insert(message_raw).values(message_id=message.id, data=b"not read here"))
    created = codec.to_micros(message.created)
    for recipient in dict.fromkeys(message.envelope.recipients):
        conn.execute(
            insert(queue_entries).values(
                message_id=message.id,
                project=message.project,
                recipient=recipient,
                status=QUEUED,
                attempts=attempts,
                last_error="451 4.4.1 no answer" if attempts else None,
                next_attempt_us=created,
                created_us=created,
            )
        )


async def test_upgrade_from_0002_keeps_and_completes_existing_entries(
    target: str, clock: FakeClock
) -> None:
    resolved = resolve_target(target)
    if resolved.sqlite_path is not None:
        Path(resolved.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    base = make_message(clock, to=("a@example.net", "jürgen@bücher.example"), status="queued")
    dsn = dataclasses.replace(
        base,
        project="acme",
        envelope=dataclasses.replace(
            base.envelope,
            mail_params={"RET": "FULL", "ENVID": "QQ314159"},
            rcpt_params=({"NOTIFY": "NEVER"}, {"NOTIFY": "SUCCESS", "ORCPT": "rfc822;j@x.example"}),
        ),
    )
    plain = dataclasses.replace(
        make_message(clock, to=("b@Example.ORG",), status="queued"), project="acme"
    )
    engine = writer_engine(resolved.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "0002")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO projects (id, name, mode, created_us) VALUES ('acme', 'A', 'live', 0)"
            )
            _insert_0002(conn, dsn)
            _insert_0002(conn, plain, attempts=2)
    finally:
        engine.dispose()

    store = open_store(target, clock)  # migrates to the head revision
    try:
        queue = store.queue
        first, second = queue.entries(dsn.id)
        assert first.delivery == Delivery(
            "a@example.net", "example.net", "NEVER", None, "FULL", "QQ314159"
        )
        assert second.delivery == Delivery(
            "jürgen@bücher.example",
            "xn--bcher-kva.example",
            "SUCCESS",
            "rfc822;j@x.example",
            "FULL",
            "QQ314159",
        )
        [deferred] = queue.entries(plain.id)
        assert deferred.delivery == Delivery("b@Example.ORG", "example.org")
        assert (deferred.status, deferred.attempts, deferred.last_error) == (
            QUEUED,
            2,
            "451 4.4.1 no answer",
        )
        assert deferred.lease_owner is None and deferred.lease_expires is None
        # The migrated entries are the queue's: claimable, and they hold their messages.
        assert len(queue.claim("w1", clock.now(), timedelta(minutes=1), 10)) == 3
        with pytest.raises(PendingDeliveries):
            store.delete("acme", None, None)
        with pytest.raises(IntegrityError), store._write.begin() as conn:
            conn.execute(delete(messages).where(messages.c.id == plain.id))
        assert len(queue.entries(plain.id)) == 1
    finally:
        await store.close()


async def test_upgrade_to_0006_gives_finished_messages_their_status(
    target: str, clock: FakeClock
) -> None:
    """Messages whose recipients were finished before revision 0006 stayed `queued`; the
    upgrade sets what their entries say."""
    resolved = resolve_target(target)
    if resolved.sqlite_path is not None:
        Path(resolved.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    made = {
        name: dataclasses.replace(
            make_message(clock, to=("a@example.net", "b@example.net"), status="queued"),
            project="acme",
        )
        for name in ("delivered", "partial", "bounced", "delivering", "queued")
    }
    states = {
        "delivered": ("delivered", "delivered"),
        "partial": ("delivered", "failed"),
        "bounced": ("failed", "failed"),
        "delivering": ("failed", QUEUED),
        "queued": (QUEUED, QUEUED),
    }
    engine = writer_engine(resolved.url.render_as_string(hide_password=False))
    try:
        with engine.begin() as conn:
            command.upgrade(migrate.alembic_config(conn), "0005")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO projects (id, name, mode, created_us) VALUES ('acme', 'A', 'live', 0)"
            )
            for name, message in made.items():
                _insert_0002(conn, message)
                for recipient, state in zip(
                    ("a@example.net", "b@example.net"), states[name], strict=True
                ):
                    conn.execute(
                        queue_entries.update()
                        .where(
                            queue_entries.c.message_id == message.id,
                            queue_entries.c.recipient == recipient,
                        )
                        .values(status=state)
                    )
    finally:
        engine.dispose()
    store = open_store(target, clock)
    try:
        got = {name: store.get("acme", m.id).status for name, m in made.items()}
    finally:
        await store.close()
    assert got == {
        "delivered": "delivered",
        "partial": "partially_bounced",
        "bounced": "bounced",
        "delivering": "delivering",
        "queued": "queued",
    }
