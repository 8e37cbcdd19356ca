"""signing keys; sessions record user verification and a public id; credentials record attestation

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

from passgate.store.schema import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), primary_key=True),
        sa.Column("alg", sa.String(length=8), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("private_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("publish_at", UTCDateTime(), nullable=False),
        sa.Column("signs_from", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.Column("remove_after", UTCDateTime(), nullable=True),
    )
    op.create_index("ux_signing_keys_generation", "signing_keys", ["alg", "generation"], unique=True)
    # Passkeys registered before this migration did not record it: they count as not attested (swk).
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attested", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Sessions open before this migration did not record user verification: they count as without it.
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_verified", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("sid", sa.String(length=43), nullable=True))
    sessions = sa.table("sessions", sa.column("token_hash", sa.LargeBinary()), sa.column("sid", sa.String()))
    connection = op.get_bind()
    for (token_hash,) in connection.execute(sa.select(sessions.c.token_hash)).all():
        connection.execute(
            sa.update(sessions).where(sessions.c.token_hash == token_hash).values(sid=secrets.token_urlsafe(32))
        )
    op.create_index("ux_sessions_sid", "sessions", ["sid"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_sessions_sid", table_name="sessions")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("sid")
        batch_op.drop_column("user_verified")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_column("attested")
    op.drop_index("ux_signing_keys_generation", table_name="signing_keys")
    op.drop_table("signing_keys")
