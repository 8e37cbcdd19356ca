"""Migrations: they build the schema the code uses, carry existing data over, and several nodes can run them."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from passgate.store.migrate import MIGRATION_LOCK, alembic_config, upgrade
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
    upgrade(database_url, "0003")
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
    upgrade(database_url, "0004")
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


WAITING = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"


def test_nodes_starting_together_migrate_one_after_another(postgres: PostgresServer) -> None:
    url = postgres.create_database("migrate_together")
    command = [sys.executable, "-m", "passgate", "migrate", "--database-url", url]
    with psycopg.connect(url, autocommit=True) as migrating:  # a node already migrating this database
        migrating.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        nodes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
        deadline = time.monotonic() + 60
        waiting = 0
        while waiting < 3 and time.monotonic() < deadline and all(node.poll() is None for node in nodes):
            time.sleep(0.05)
            row = migrating.execute(WAITING).fetchone()
            waiting = row[0] if row else 0
        migrating.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    outputs = [node.communicate(timeout=60)[0].decode() for node in nodes]
    assert waiting == 3, outputs
    assert [node.returncode for node in nodes] == [0, 0, 0], outputs
    with psycopg.connect(url) as connection:
        head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]


def test_open_sessions_get_a_public_id_and_count_as_without_user_verification(database_url: str) -> None:
    upgrade(database_url, "0005")
    engine = sa.create_engine(sync_url(database_url))
    moment = NOW.replace(tzinfo=None)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO users (id, username, username_normalized, display_name, user_handle, created_at,"
                " nudge_dismissed) VALUES ('u1', 'ann', 'ann', 'Ann', :handle, :at, false)"
            ),
            {"handle": b"h" * 32, "at": moment},
        )
        for token_hash in (b"a" * 32, b"b" * 32):
            connection.execute(
                sa.text(
                    "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, kind)"
                    " VALUES (:hash, 'u1', :at, :at, :at, 'passkey')"
                ),
                {"hash": token_hash, "at": moment},
            )
    upgrade(database_url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT sid, user_verified FROM sessions")).all()
    engine.dispose()
    assert len({sid for sid, _ in rows}) == 2 and all(sid and len(sid) == 43 for sid, _ in rows)
    assert [bool(verified) for _, verified in rows] == [False, False]
