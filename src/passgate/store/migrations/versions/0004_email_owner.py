"""a verified email address belongs to one account

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from passgate.core.identifiers import normalize_identifier

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

users = sa.table(
    "users",
    sa.column("id", sa.String()),
    sa.column("email", sa.String()),
    sa.column("email_verified_at", sa.DateTime()),
    sa.column("created_at", sa.DateTime()),
    sa.column("email_normalized", sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_normalized", sa.String(length=254), nullable=True))

    # Backfill in Python, with the one normalization the code uses. Where two accounts verified the same
    # address, the first to verify keeps it; the later ones go back to unverified (they can verify another).
    connection = op.get_bind()
    verified = connection.execute(
        sa.select(users.c.id, users.c.email)
        .where(users.c.email.is_not(None), users.c.email_verified_at.is_not(None))
        .order_by(users.c.email_verified_at, users.c.created_at, users.c.id)
    ).all()
    owners: set[str] = set()
    for user_id, email in verified:
        address = normalize_identifier(email)
        if address in owners or not address or len(address) > 254:
            connection.execute(sa.update(users).where(users.c.id == user_id).values(email_verified_at=None))
            continue
        owners.add(address)
        connection.execute(sa.update(users).where(users.c.id == user_id).values(email_normalized=address))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index("ux_users_email_normalized", ["email_normalized"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ux_users_email_normalized")
        batch_op.drop_column("email_normalized")
