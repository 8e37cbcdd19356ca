"""Apply the Alembic migrations shipped inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from passgate.store.sql import sync_url

MIGRATIONS = Path(__file__).with_name("migrations")

# The PostgreSQL advisory lock a migration holds for its transaction: nodes that start together (each `serve`
# migrates first) migrate one after the other, and those that come second find the database up to date.
MIGRATION_LOCK = 0x7061_7373_6761_7465  # "passgate"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic's config is ConfigParser-based: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
