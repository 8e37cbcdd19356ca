"""Migrations as several nodes run them: each `passgate serve` migrates before it listens."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
from alembic.script import ScriptDirectory

from passgate.store.migrate import MIGRATION_LOCK, alembic_config
from tests.services import PostgresServer

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
