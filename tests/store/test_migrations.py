"""The migrations build the schema the code uses, and carry existing data over (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from passgate.store.migrate import upgrade
from passgate.store.schema import metadata
from passgate.store.sql import sync_url
from tests.services import PostgresServer

_databases = itertools.count()
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        yield postgres.create_database(f"migrations_{next(_databases)}")
    else:
        yield f"sqlite:///{tmp_path}/migrations.db"


def test_the_migrations_build_the_schema(database_url: str) -> None:
    upgrade(database_url)
    engine = sa.create_engine(sync_url(database_url))
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    engine.dispose()


def test_verified_addresses_get_one_owner(database_url: str) -> None:
    upgrade(database_url, "0002")
    engine = sa.create_engine(sync_url(database_url))
    users = sa.table(
        "users",
        *(sa.column(name) for name in ("id", "username", "username_normalized", "display_name", "user_handle")),
        *(sa.column(name) for name in ("created_at", "email", "email_verified_at", "nudge_dismissed")),
    )
    rows = [
        ("first", "Ann@example.com", NOW),  # verified first: keeps the address
        ("second", "ann@EXAMPLE.com", NOW + timedelta(hours=1)),  # the same address, verified later
        ("third", "ann@example.com", None),  # typed but never verified
        ("fourth", "Straße@example.com", NOW + timedelta(hours=2)),
        ("fifth", "STRASSE@example.com", NOW + timedelta(hours=3)),  # the same once normalized
    ]
    with engine.begin() as connection:
        for number, (name, email, verified_at) in enumerate(rows):
            connection.execute(
                sa.insert(users).values(
                    id=name,
                    username=name,
                    username_normalized=name,
                    display_name=name,
                    user_handle=bytes([number]) * 32,
                    created_at=NOW.replace(tzinfo=None),
                    email=email,
                    email_verified_at=verified_at.replace(tzinfo=None) if verified_at else None,
                    nudge_dismissed=False,
                )
            )
    upgrade(database_url, "0003_email_owner")
    with engine.connect() as connection:
        found = connection.execute(
            sa.text("SELECT id, email, email_verified_at IS NOT NULL, email_normalized FROM users ORDER BY id")
        ).all()
    engine.dispose()
    assert sorted(tuple(row) for row in found) == [
        ("fifth", "STRASSE@example.com", False, None),
        ("first", "Ann@example.com", True, "ann@example.com"),
        ("fourth", "Straße@example.com", True, "strasse@example.com"),
        ("second", "ann@EXAMPLE.com", False, None),
        ("third", "ann@example.com", False, None),
    ]
