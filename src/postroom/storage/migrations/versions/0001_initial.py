"""Messages, their raw bytes and their tags.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = None
depends_on: tuple[str, ...] | None = None


def upgrade() -> None:
    seq_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "messages",
        sa.Column("seq", seq_type, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("read", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("username", sa.Text(), nullable=True),
        sa.Column("mail_from", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("envelope_params", sa.Text(), nullable=False),
        sa.Column("from_json", sa.Text(), nullable=True),
        sa.Column("to_json", sa.Text(), nullable=False),
        sa.Column("cc_json", sa.Text(), nullable=False),
        sa.Column("bcc_json", sa.Text(), nullable=False),
        sa.Column("reply_to_json", sa.Text(), nullable=False),
        sa.Column("from_text", sa.Text(), nullable=False),
        sa.Column("to_text", sa.Text(), nullable=False),
        sa.Column("cc_text", sa.Text(), nullable=False),
        sa.Column("bcc_text", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("subject_lc", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("message_id_lc", sa.Text(), nullable=False),
        sa.Column("date", sa.Text(), nullable=True),
        sa.Column("snippet", sa.Text(), nullable=False),
        sa.Column("attachment_count", sa.Integer(), nullable=False),
        sa.Column("attachments", sa.Text(), nullable=False),
        sa.Column("header_tags", sa.Text(), nullable=False),
        sa.Column("return_path", sa.Text(), nullable=False),
        sa.Column("defects", sa.Text(), nullable=False),
        sa.Column("warnings", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_messages"),
        sa.UniqueConstraint("id", name="uq_messages_id"),
    )
    op.create_index("ix_messages_project_created", "messages", ["project", "created_us", "seq"])
    op.create_index("ix_messages_project_read", "messages", ["project", "read"])

    op.create_table(
        "message_raw",
        sa.Column("message_id", sa.String(26), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_message_raw"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_message_raw_message_id_messages",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "message_tags",
        sa.Column("message_id", sa.String(26), nullable=False),
        sa.Column("project", sa.String(100), nullable=False),
        sa.Column("tag", sa.Text(), nullable=False),
        sa.Column("tag_lc", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "tag_lc", name="pk_message_tags"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_message_tags_message_id_messages",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_message_tags_project_tag", "message_tags", ["project", "tag_lc"])


def downgrade() -> None:
    op.drop_table("message_tags")
    op.drop_table("message_raw")
    op.drop_index("ix_messages_project_read", table_name="messages")
    op.drop_index("ix_messages_project_created", table_name="messages")
    op.drop_table("messages")
