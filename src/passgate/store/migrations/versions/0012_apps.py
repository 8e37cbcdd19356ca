"""Apps of the passkey API: apps, their API keys, their own users and those users' passkeys

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from passgate.store.schema import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("app_id", sa.String(length=32), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("origins", sa.JSON(), nullable=False),
        sa.Column("rp_id", sa.String(length=253), nullable=False),
        sa.Column("policy", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "app_keys",
        sa.Column("key_hash", sa.LargeBinary(length=32), primary_key=True),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=32), sa.ForeignKey("apps.app_id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_app_keys_app_id", "app_keys", ["app_id"])
    op.create_table(
        "app_users",
        sa.Column("app_id", sa.String(length=32), sa.ForeignKey("apps.app_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("user_id", sa.String(length=64), primary_key=True),
        sa.Column("user_handle", sa.LargeBinary(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "app_credentials",
        sa.Column("credential_id", sa.LargeBinary(length=1023), primary_key=True),
        sa.Column("app_id", sa.String(length=32), sa.ForeignKey("apps.app_id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("algorithm", sa.Integer(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("aaguid", sa.String(length=36), nullable=False),
        sa.Column("attestation_format", sa.String(length=32), nullable=False),
        sa.Column("transports", sa.JSON(), nullable=False),
        sa.Column("backup_eligible", sa.Boolean(), nullable=False),
        sa.Column("backed_up", sa.Boolean(), nullable=False),
        sa.Column("user_verified", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("nickname", sa.String(length=64), nullable=True),
        sa.Column("attested", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_app_credentials_user", "app_credentials", ["app_id", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_app_credentials_user", table_name="app_credentials")
    op.drop_table("app_credentials")
    op.drop_table("app_users")
    op.drop_index("ix_app_keys_app_id", table_name="app_keys")
    op.drop_table("app_keys")
    op.drop_table("apps")
