"""Platform: projects, credentials, API keys, domains and DKIM keys, verified addresses,
admin users, send counters (quotas) and the delivery queue.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project"], ["projects.id"], name=f"fk_{table}_project_projects", ondelete="CASCADE"
    )


def upgrade() -> None:
    seq_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

    projects = op.create_table(
        "projects",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("daily_quota", sa.Integer(), nullable=True),
        sa.Column("rate_limit", sa.Integer(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
    )

    op.create_table(
        "smtp_credentials",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("secret_digest", sa.String(64), nullable=False),
        sa.Column("allowed_from", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("last_used_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_smtp_credentials"),
        sa.UniqueConstraint("username", name="uq_smtp_credentials_username"),
        _project_fk("smtp_credentials"),
    )
    op.create_index("ix_smtp_credentials_project", "smtp_credentials", ["project"])

    op.create_table(
        "ip_credentials",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("network", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ip_credentials"),
        sa.UniqueConstraint("network", name="uq_ip_credentials_network"),
        _project_fk("ip_credentials"),
    )
    op.create_index("ix_ip_credentials_project", "ip_credentials", ["project"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("last_used_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        _project_fk("api_keys"),
    )
    op.create_index("ix_api_keys_project", "api_keys", ["project"])

    op.create_table(
        "domains",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("verification_token", sa.String(100), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("verified_at_us", sa.BigInteger(), nullable=True),
        sa.Column("last_checked_us", sa.BigInteger(), nullable=True),
        sa.Column("check_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_domains"),
        sa.UniqueConstraint("project", "name", name="uq_domains_project"),
        _project_fk("domains"),
    )
    op.create_index("ix_domains_name", "domains", ["name"])

    op.create_table(
        "dkim_keys",
        sa.Column("domain_id", sa.String(26), nullable=False),
        sa.Column("selector", sa.String(63), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("public_record", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("activated_us", sa.BigInteger(), nullable=True),
        sa.Column("retire_after_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("domain_id", "selector", name="pk_dkim_keys"),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name="fk_dkim_keys_domain_id_domains",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "verified_addresses",
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project", "address", name="pk_verified_addresses"),
        _project_fk("verified_addresses"),
    )

    op.create_table(
        "admin_users",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_admin_users"),
        sa.UniqueConstraint("username", name="uq_admin_users_username"),
    )

    op.create_table(
        "send_counts",
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("project", "bucket", name="pk_send_counts"),
        _project_fk("send_counts"),
    )

    op.create_table(
        "queue_entries",
        sa.Column("id", seq_type, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(26), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="queued"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_queue_entries"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_queue_entries_message_id_messages",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_queue_entries_status", "queue_entries", ["status", "next_attempt_us"])
    op.create_index("ix_queue_entries_message_id", "queue_entries", ["message_id"])

    # The project every capture door and pre-platform message belongs to.
    bind = op.get_bind()
    exists = bind.execute(sa.select(projects.c.id).where(projects.c.id == "default")).first()
    if exists is None:
        op.bulk_insert(
            projects,
            [
                {
                    "id": "default",
                    "name": "Default",
                    "mode": "capture",
                    "daily_quota": None,
                    "rate_limit": None,
                    "created_us": int(time.time() * 1_000_000),
                }
            ],
        )


def downgrade() -> None:
    op.drop_index("ix_queue_entries_message_id", table_name="queue_entries")
    op.drop_index("ix_queue_entries_status", table_name="queue_entries")
    op.drop_table("queue_entries")
    op.drop_table("send_counts")
    op.drop_table("admin_users")
    op.drop_table("verified_addresses")
    op.drop_table("dkim_keys")
    op.drop_index("ix_domains_name", table_name="domains")
    op.drop_table("domains")
    op.drop_index("ix_api_keys_project", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("ix_ip_credentials_project", table_name="ip_credentials")
    op.drop_table("ip_credentials")
    op.drop_index("ix_smtp_credentials_project", table_name="smtp_credentials")
    op.drop_table("smtp_credentials")
    op.drop_table("projects")
