"""moving from passwords: imported accounts' external ids and password hashes, and how each passkey came to be

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from passgate.store.schema import UTCDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=255), nullable=True))
        batch_op.create_index("ux_users_external_id", ["external_id"], unique=True)
    # Every passkey stored before this migration came from a registration ceremony.
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("created_by", sa.String(length=16), nullable=False, server_default="registration")
        )
    op.create_table(
        "passwords",
        sa.Column("user_id", sa.String(length=32), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("hash", sa.String(length=1024), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("passwords")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_column("created_by")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ux_users_external_id")
        batch_op.drop_column("external_id")
