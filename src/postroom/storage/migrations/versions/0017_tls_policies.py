"""MTA-STS and TLS-RPT (issue 10): table `mta_sts_policies` (the policies of destination
domains, cached across restarts), `tls_report_counts` (TLS sessions per day, policy domain,
policy, MX host, addresses and result, for RFC 8460 reports), `tls_rpt_domains` (the report
addresses each domain published), and column `tls_policy` of `delivery_attempts` (the TLS
policy an attempt was held to and what became of it).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision: str | None = "0016"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    op.create_table(
        "mta_sts_policies",
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("policy_id", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("fetched_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("domain", name="pk_mta_sts_policies"),
    )
    key = ("day", "domain", "policy_type", "policy_id", "mx_host", "sending_ip", "receiving_ip")
    op.create_table(
        "tls_report_counts",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("policy_type", sa.String(24), nullable=False),
        sa.Column("policy_id", sa.String(32), nullable=False),
        sa.Column("mx_host", sa.String(253), nullable=False),
        sa.Column("sending_ip", sa.String(64), nullable=False),
        sa.Column("receiving_ip", sa.String(64), nullable=False),
        sa.Column("result_type", sa.String(40), nullable=False),
        sa.Column("sessions", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(*key, "result_type", name="pk_tls_report_counts"),
    )
    op.create_table(
        "tls_rpt_domains",
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("rua", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("domain", name="pk_tls_rpt_domains"),
    )
    # Plain ADD COLUMN (SQLite has it); old attempts had no policy.
    op.add_column(
        "delivery_attempts",
        sa.Column("tls_policy", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    with op.batch_alter_table("delivery_attempts") as batch:
        batch.drop_column("tls_policy")
    op.drop_table("tls_rpt_domains")
    op.drop_table("tls_report_counts")
    op.drop_table("mta_sts_policies")
