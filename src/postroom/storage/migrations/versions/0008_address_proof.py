"""Address identities are pending until proven: status, token digest and mail counters.

Adds to `verified_addresses`: `status` ('pending' or 'verified'), `token_digest` (SHA-256 of
the token mailed to the address; unique), `token_expires_us`, `verified_us`, `last_mail_us`,
`mails_in_window` and `window_start_us` (the resend throttle).

Rows that exist already become 'pending' without a token: they were added without any proof
(issue 9), so they allow nothing until someone who reads the mailbox confirms a new mail
(`postroom address resend`, or the resend endpoint).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None

_TABLE = "verified_addresses"
_INDEX = "ix_verified_addresses_token_digest"


def upgrade() -> None:
    op.add_column(
        _TABLE, sa.Column("status", sa.String(16), nullable=False, server_default="pending")
    )
    op.add_column(_TABLE, sa.Column("token_digest", sa.String(64), nullable=True))
    op.add_column(_TABLE, sa.Column("token_expires_us", sa.BigInteger(), nullable=True))
    op.add_column(_TABLE, sa.Column("verified_us", sa.BigInteger(), nullable=True))
    op.add_column(_TABLE, sa.Column("last_mail_us", sa.BigInteger(), nullable=True))
    op.add_column(
        _TABLE,
        sa.Column("mails_in_window", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(_TABLE, sa.Column("window_start_us", sa.BigInteger(), nullable=True))
    op.create_index(_INDEX, _TABLE, ["token_digest"], unique=True)


def downgrade() -> None:
    op.drop_index(_INDEX, table_name=_TABLE)
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL): a batch copy of the table would lose the
    # change-counter triggers of migration 0007.
    for name in (
        "window_start_us",
        "mails_in_window",
        "last_mail_us",
        "verified_us",
        "token_expires_us",
        "token_digest",
        "status",
    ):
        op.execute(f"ALTER TABLE {_TABLE} DROP COLUMN {name}")
