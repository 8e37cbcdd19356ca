"""Alembic environment: Passgate runs migrations programmatically (passgate migrate / serve)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool, text

from passgate.store.migrate import MIGRATION_LOCK
from passgate.store.schema import metadata

config = context.config


def migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


def run_migrations() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        migrate(connectable)
        return
    engine = engine_from_config(
        config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as connection:
        migrate(connection)


run_migrations()
