"""account life

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import passgate.store.schema

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "backup_codes",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=64), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", passgate.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", passgate.store.schema.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "number"),
    )
    op.create_table(
        "email_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("browser", sa.LargeBinary(length=32), nullable=True),
        sa.Column("created_at", passgate.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", passgate.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("email_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_email_tokens_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("authenticated_at", passgate.store.schema.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default="passkey", nullable=False))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.add_column(
            sa.Column("email_verified_at", passgate.store.schema.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("nudge_dismissed", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("nudge_dismissed")
        batch_op.drop_column("email_verified_at")
        batch_op.drop_column("email")

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("kind")
        batch_op.drop_column("authenticated_at")

    with op.batch_alter_table("email_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_email_tokens_user_id"))

    op.drop_table("email_tokens")
    op.drop_table("backup_codes")
