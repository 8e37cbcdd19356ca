"""Filler accounts for the scale run, inserted straight into PostgreSQL (HTTP would take hours for a million).

Each filler row is one user with one credential, shaped like Passgate's own rows: a random 16-character user
id, a random 32-byte user handle, a random 16-byte credential id, and a real ES256 COSE public key (the same
bytes on every filler row: nothing ever verifies against them). They are generated server-side by
`INSERT ... SELECT ... FROM generate_series` in batches (random values from md5 of a per-run seed and the row
number), then the tables are vacuumed and analyzed and a checkpoint is taken, so that the measurement sees a
settled database rather than one busy with autovacuum and writing out dirty pages.
"""

from __future__ import annotations

import os
import secrets
import time

import psycopg

_BATCH = 200_000

_USERS = """
INSERT INTO users (id, username, username_normalized, display_name, user_handle, created_at)
SELECT left(md5(%(seed)s || 'u' || i), 16), 'filler-' || %(seed)s || '-' || i, 'filler-' || %(seed)s || '-' || i,
       'Filler ' || i, decode(md5(%(seed)s || 'h' || i) || md5(%(seed)s || 'k' || i), 'hex'), now()
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
"""

_CREDENTIALS = """
INSERT INTO credentials (credential_id, user_id, public_key, algorithm, sign_count, aaguid, attestation_format,
                         transports, backup_eligible, backed_up, user_verified, created_at)
SELECT decode(md5(%(seed)s || 'c' || i), 'hex'), left(md5(%(seed)s || 'u' || i), 16), %(key)s, -7, 0,
       '00000000-0000-0000-0000-000000000000', 'none', '["internal"]'::json, false, false, true, now()
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
"""


def count_credentials(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT count(*) FROM credentials").fetchone()
    return int(row[0]) if row else 0


def add_fillers(database_url: str, count: int, public_key: bytes) -> float:
    """Insert `count` filler users with one credential each; returns the seconds it took (VACUUM included)."""
    started = time.monotonic()
    seed = secrets.token_hex(8)
    with psycopg.connect(database_url, autocommit=True) as connection:
        for first in range(1, count + 1, _BATCH):
            bounds = {"seed": seed, "first": first, "last": min(count, first + _BATCH - 1), "key": public_key}
            with connection.transaction():
                connection.execute(_USERS, bounds)
                connection.execute(_CREDENTIALS, bounds)
        # As a long-running database would be: statistics current, visibility map set, dirty pages written.
        # Otherwise autovacuum and the checkpointer would work on the new rows during the measurement.
        connection.execute("VACUUM (ANALYZE) users")
        connection.execute("VACUUM (ANALYZE) credentials")
        connection.execute("CHECKPOINT")
    os.sync()  # and the kernel's dirty pages written back now, not by kernel threads during the measurement
    return time.monotonic() - started
