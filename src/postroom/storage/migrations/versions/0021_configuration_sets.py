"""SES configuration sets and event destinations (storage/config_sets.py), and the webhook
fan-out trigger on `events` taught about them:

* a webhook named by an event destination is left out of the project-wide fan-out;
* an event of a message whose tags name a configuration set (`ses:configuration-set:NAME`)
  gets one outbox row per enabled webhook named by an enabled destination of that set whose
  types include the event's.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision: str | None = "0020"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_COLUMNS = """
    INSERT INTO webhook_outbox
        (webhook_id, event_id, project, message_id, status, attempts, next_attempt_us,
         created_us)"""

_PROJECT_WIDE = (
    _COLUMNS
    + """
    SELECT w.id, NEW.id, NEW.project, NEW.message_id, 'pending', 0, NEW.time_us, NEW.time_us
    FROM webhooks w
    WHERE w.project = NEW.project AND w.enabled AND {match} > 0
      AND NOT EXISTS (SELECT 1 FROM ses_event_destinations x WHERE x.webhook_id = w.id);
"""
)

_BY_SET = (
    _COLUMNS
    + """
    SELECT DISTINCT w.id, NEW.id, NEW.project, NEW.message_id, 'pending', 0, NEW.time_us,
        NEW.time_us
    FROM message_tags t
    JOIN ses_event_destinations d
      ON d.project = t.project AND t.tag_lc = 'ses:configuration-set:' || d.set_lc
    JOIN webhooks w ON w.id = d.webhook_id
    WHERE NEW.message_id IS NOT NULL AND t.message_id = NEW.message_id
      AND t.project = NEW.project AND d.enabled AND w.enabled AND {dmatch} > 0;
"""
)


def _body(position: str) -> str:
    def match(column: str) -> str:
        return f"{position}({column}, ',' || NEW.type || ',')"

    return _PROJECT_WIDE.format(match=match("w.types")) + _BY_SET.format(dmatch=match("d.types"))


SQLITE_TRIGGER = (
    "CREATE TRIGGER events_webhook_fanout AFTER INSERT ON events BEGIN" + _body("instr") + "END"
)
POSTGRES_FUNCTION = (
    "CREATE OR REPLACE FUNCTION postroom_webhook_fanout() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN" + _body("strpos") + " RETURN NULL; END $$"
)


def upgrade() -> None:
    op.create_table(
        "ses_configuration_sets",
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("name_lc", sa.String(64), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project", "name_lc", name="pk_ses_configuration_sets"),
        sa.ForeignKeyConstraint(
            ["project"],
            ["projects.id"],
            name="fk_ses_configuration_sets_project_projects",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "ses_event_destinations",
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("set_lc", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("name_lc", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("matching", sa.Text(), nullable=False),
        sa.Column("types", sa.Text(), nullable=False),
        sa.Column("webhook_id", sa.String(26), nullable=False),
        sa.Column("topic_arn", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project", "set_lc", "name_lc", name="pk_ses_event_destinations"),
        sa.ForeignKeyConstraint(
            ["project"],
            ["projects.id"],
            name="fk_ses_event_destinations_project_projects",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name="fk_ses_event_destinations_webhook_id_webhooks",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_ses_event_destinations_webhook_id", "ses_event_destinations", ["webhook_id"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)  # the trigger (0013) calls it
    else:
        op.execute("DROP TRIGGER IF EXISTS events_webhook_fanout")
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    """Back to 0013's fan-out (every enabled webhook subscribed to the type), then drop."""
    old = _PROJECT_WIDE.replace(
        "\n      AND NOT EXISTS (SELECT 1 FROM ses_event_destinations x WHERE x.webhook_id = w.id)",
        "",
    )
    if op.get_bind().dialect.name == "postgresql":
        match = "strpos(w.types, ',' || NEW.type || ',')"
        op.execute(
            "CREATE OR REPLACE FUNCTION postroom_webhook_fanout() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN" + old.format(match=match) + " RETURN NULL; END $$"
        )
    else:
        match = "instr(w.types, ',' || NEW.type || ',')"
        op.execute("DROP TRIGGER IF EXISTS events_webhook_fanout")
        op.execute(
            "CREATE TRIGGER events_webhook_fanout AFTER INSERT ON events BEGIN"
            + old.format(match=match)
            + "END"
        )
    op.drop_index("ix_ses_event_destinations_webhook_id", "ses_event_destinations")
    op.drop_table("ses_event_destinations")
    op.drop_table("ses_configuration_sets")
