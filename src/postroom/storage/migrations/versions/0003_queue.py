"""The queue for delivery workers: recipient domain, DSN parameters, leases; deleting a
message no longer deletes its queue entries.

Adds to `queue_entries`: `domain` (the recipient's domain in A-labels, for MX routing),
`notify`, `orcpt` (RCPT parameters), `ret`, `envid` (MAIL parameters), `lease_owner`,
`lease_expires_us` and `finished_us`. Rows that exist already get their domain and DSN
parameters from their message's stored envelope. The foreign key to `messages` loses its
ON DELETE CASCADE: the database refuses to delete a message that still has queue entries.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_FK = "fk_queue_entries_message_id_messages"
_NEW_COLUMNS = ("domain", "notify", "orcpt", "ret", "envid")


def _domain(recipient: str) -> str:
    """As postroom.pipeline.deliveries.recipient_domain (a migration keeps its own copy: the
    application's code may change after this revision is written)."""
    domain = recipient.rpartition("@")[2].rstrip(".")
    if domain.startswith("["):
        return domain.lower()
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return domain.lower()


def _backfill(bind: sa.engine.Connection) -> None:
    entries = sa.table(
        "queue_entries",
        sa.column("id", sa.BigInteger()),
        sa.column("message_id", sa.String()),
        sa.column("recipient", sa.Text()),
        *(sa.column(name, sa.Text()) for name in _NEW_COLUMNS),
    )
    messages = sa.table(
        "messages",
        sa.column("id", sa.String()),
        sa.column("recipients", sa.Text()),
        sa.column("envelope_params", sa.Text()),
    )
    rows = bind.execute(
        sa.select(
            entries.c.id, entries.c.recipient, messages.c.recipients, messages.c.envelope_params
        ).select_from(entries.join(messages, messages.c.id == entries.c.message_id))
    ).all()
    updates: list[dict[str, Any]] = []
    for entry_id, recipient, recipients_json, params_json in rows:
        recipients = json.loads(recipients_json or "[]")
        params = json.loads(params_json or "{}")
        mail = params.get("mail") or {}
        rcpt_params = params.get("rcpt") or []
        rcpt: dict[str, str] = {}
        if recipient in recipients:
            index = recipients.index(recipient)
            if index < len(rcpt_params):
                rcpt = rcpt_params[index] or {}
        updates.append(
            {
                "entry": entry_id,
                "domain": _domain(recipient),
                "notify": rcpt.get("NOTIFY"),
                "orcpt": rcpt.get("ORCPT"),
                "ret": mail.get("RET"),
                "envid": mail.get("ENVID"),
            }
        )
    if updates:
        bind.execute(
            entries.update()
            .where(entries.c.id == sa.bindparam("entry"))
            .values({name: sa.bindparam(name) for name in _NEW_COLUMNS}),
            updates,
        )


def upgrade() -> None:
    with op.batch_alter_table("queue_entries") as batch:
        batch.add_column(sa.Column("domain", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("notify", sa.String(32), nullable=True))
        batch.add_column(sa.Column("orcpt", sa.Text(), nullable=True))
        batch.add_column(sa.Column("ret", sa.String(8), nullable=True))
        batch.add_column(sa.Column("envid", sa.Text(), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(200), nullable=True))
        batch.add_column(sa.Column("lease_expires_us", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("finished_us", sa.BigInteger(), nullable=True))
        batch.drop_constraint(_FK, type_="foreignkey")
        batch.create_foreign_key(_FK, "messages", ["message_id"], ["id"])
    _backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("queue_entries") as batch:
        batch.drop_constraint(_FK, type_="foreignkey")
        batch.create_foreign_key(_FK, "messages", ["message_id"], ["id"], ondelete="CASCADE")
        for name in (
            "finished_us",
            "lease_expires_us",
            "lease_owner",
            "envid",
            "ret",
            "orcpt",
            "notify",
            "domain",
        ):
            batch.drop_column(name)
