"""Sending over HTTP: idempotency keys of the native send API, versioned email templates and
the SES-compatible API's access keys.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project"], ["projects.id"], name=f"fk_{table}_project_projects", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("project", "key", name="pk_idempotency_keys"),
        _project_fk("idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_us", "idempotency_keys", ["created_us"])
    op.create_table(
        "email_templates",
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project", "name", "version", name="pk_email_templates"),
        _project_fk("email_templates"),
    )
    op.create_table(
        "ses_access_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("last_used_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ses_access_keys"),
        _project_fk("ses_access_keys"),
    )
    op.create_index("ix_ses_access_keys_project", "ses_access_keys", ["project"])


def downgrade() -> None:
    op.drop_index("ix_ses_access_keys_project", "ses_access_keys")
    op.drop_table("ses_access_keys")
    op.drop_table("email_templates")
    op.drop_index("ix_idempotency_keys_created_us", "idempotency_keys")
    op.drop_table("idempotency_keys")
