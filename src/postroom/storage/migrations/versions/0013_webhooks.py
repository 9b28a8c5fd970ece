"""Webhooks: tables `webhooks`, `webhook_outbox` and `webhook_requests`, and the fan-out
trigger on `events` (storage/webhooks.py).

The trigger writes one outbox row per enabled webhook of the event's project subscribed to
its type, in the statement (so the transaction) that inserts the event: whoever writes an
event, now or later, fans it out without knowing about webhooks.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_FANOUT_SELECT = """
    INSERT INTO webhook_outbox
        (webhook_id, event_id, project, message_id, status, attempts, next_attempt_us,
         created_us)
    SELECT w.id, NEW.id, NEW.project, NEW.message_id, 'pending', 0, NEW.time_us, NEW.time_us
    FROM webhooks w
    WHERE w.project = NEW.project AND w.enabled AND {match} > 0;
"""

SQLITE_TRIGGER = (
    "CREATE TRIGGER events_webhook_fanout AFTER INSERT ON events BEGIN"
    + _FANOUT_SELECT.format(match="instr(w.types, ',' || NEW.type || ',')")
    + "END"
)
POSTGRES_FUNCTION = (
    "CREATE OR REPLACE FUNCTION postroom_webhook_fanout() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN"
    + _FANOUT_SELECT.format(match="strpos(w.types, ',' || NEW.type || ',')")
    + " RETURN NULL; END $$"
)
POSTGRES_TRIGGER = (
    "CREATE TRIGGER events_webhook_fanout AFTER INSERT ON events "
    "FOR EACH ROW EXECUTE FUNCTION postroom_webhook_fanout()"
)


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("types", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("include_headers", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("failing_since_us", sa.BigInteger(), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
        sa.ForeignKeyConstraint(
            ["project"], ["projects.id"], name="fk_webhooks_project_projects", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_webhooks_project", "webhooks", ["project"])
    op.create_table(
        "webhook_outbox",
        sa.Column("id", _SEQ, nullable=False, autoincrement=True),
        sa.Column("webhook_id", sa.String(26), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("message_id", sa.String(26), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("finished_us", sa.BigInteger(), nullable=True),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_us", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("resend_of", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_outbox"),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name="fk_webhook_outbox_webhook_id_webhooks",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_webhook_outbox_status", "webhook_outbox", ["status", "next_attempt_us"])
    op.create_index(
        "ix_webhook_outbox_order", "webhook_outbox", ["webhook_id", "message_id", "status", "id"]
    )
    op.create_table(
        "webhook_requests",
        sa.Column("id", _SEQ, nullable=False, autoincrement=True),
        sa.Column("webhook_id", sa.String(26), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("request_body", sa.Text(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("succeeded", sa.Boolean(create_constraint=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_requests"),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name="fk_webhook_requests_webhook_id_webhooks",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_webhook_requests_webhook", "webhook_requests", ["webhook_id", "id"])
    op.create_index("ix_webhook_requests_time", "webhook_requests", ["time_us"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS events_webhook_fanout"
        + (" ON events" if op.get_bind().dialect.name == "postgresql" else "")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS postroom_webhook_fanout()")
    op.drop_table("webhook_requests")
    op.drop_table("webhook_outbox")
    op.drop_table("webhooks")
