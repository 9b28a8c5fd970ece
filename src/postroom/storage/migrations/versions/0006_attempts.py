"""Delivery attempts: table `delivery_attempts` (storage/attempts.py), one row per attempt of
one recipient (time, duration, MX host, IP and port, local address, TLS version and cipher, the
full reply, the hosts tried before), written with the attempt's result on the queue entry.

Messages of live projects whose recipients are all finished get the status their entries say
(delivered, bounced, partially_bounced) or `delivering` while some are finished; until this
revision they stayed `queued`.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def _backfill_status() -> None:
    """As postroom.storage.queue.message_status (a migration keeps its own copy)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT message_id, "
            "SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) "
            "FROM queue_entries GROUP BY message_id"
        )
    ).all()
    updates = []
    for message_id, pending, delivered, failed in rows:
        if pending:
            status = "delivering" if delivered or failed else "queued"
        elif failed and delivered:
            status = "partially_bounced"
        else:
            status = "bounced" if failed else "delivered"
        if status != "queued":
            updates.append({"mid": message_id, "status": status})
    if updates:
        bind.execute(sa.text("UPDATE messages SET status = :status WHERE id = :mid"), updates)


def upgrade() -> None:
    seq_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "delivery_attempts",
        sa.Column("id", seq_type, autoincrement=True, nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(26), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("started_us", sa.BigInteger(), nullable=False),
        sa.Column("duration_us", sa.BigInteger(), nullable=False),
        sa.Column("mx_host", sa.Text(), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("local_address", sa.String(80), nullable=False),
        sa.Column("tls_version", sa.String(32), nullable=False),
        sa.Column("tls_cipher", sa.String(128), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("enhanced", sa.String(16), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sa.Column("earlier", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempts"),
    )
    op.create_index("ix_delivery_attempts_message_id", "delivery_attempts", ["message_id"])
    op.create_index("ix_delivery_attempts_project", "delivery_attempts", ["project"])
    _backfill_status()


def downgrade() -> None:
    op.drop_table("delivery_attempts")
