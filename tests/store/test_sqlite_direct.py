"""The sign-up's and the sign-in's statements on SQLite's driver (store.sqlite_direct) store exactly what
SQLAlchemy stores.

One database is written through the direct path, another through SQLAlchemy (the PostgreSQL path), with the same
sign-up and sign-in; every stored value, and SQLite's type of it, must be the same. Whole seconds are among the
moments: the driver's own datetime adapter would drop their ".000000", and text comparisons (expiry, purge) would
then go wrong.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import sqlite

from passgate.store.base import CredentialUse, Event, Session, WebhookEndpoint, WebhookEvent
from passgate.store.migrate import upgrade
from passgate.store.sql import QUEUE_WEBHOOK, Database, SqlSignIns, sql_storage
from tests.store.test_contract import credential, user

WHOLE = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
PART = datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=UTC)
TABLES = ("users", "credentials", "sessions", "events", "webhook_outbox")


async def signed_in(path: Path, *, direct: bool) -> dict[str, list[tuple[Any, ...]]]:
    url = f"sqlite:///{path}"
    upgrade(url)
    database = Database(url)
    storage = sql_storage(database)
    assert (database.direct is not None) and storage.sign_ins._direct is not None  # the default on SQLite
    if not direct:
        database.direct = None
        storage = sql_storage(database)
    try:
        await storage.webhooks.put_endpoint(
            WebhookEndpoint(id="e1", url="https://e1.example/", events=("*",), secrets=b"\x01", created_at=WHOLE)
        )
        signed_up = Session(token_hash=b"u" * 32, user_id="u1", created_at=PART, last_seen_at=PART, expires_at=WHOLE)
        created = Event(type="passkey.register", outcome="success", created_at=PART, user_id="u1", credential_id=b"c1")
        welcome = [WebhookEvent(message_id="m0", type="user.created", body='{"u":1}', created_at=WHOLE)]
        queued = await storage.users.create_with_credential(
            user(), credential(sign_count=1), event=created, session=signed_up, outbox=welcome
        )
        assert queued == 1
        old = Session(token_hash=b"o" * 32, user_id="u1", created_at=WHOLE, last_seen_at=WHOLE, expires_at=PART)
        await storage.sessions.create(old)
        new = Session(
            token_hash=b"n" * 32,
            user_id="u1",
            created_at=PART,
            last_seen_at=PART,
            expires_at=WHOLE + timedelta(days=1),
            authenticated_at=WHOLE,
            credential_id=b"c1",
            user_verified=True,
        )
        event = Event(
            type="sign_in",
            outcome="success",
            created_at=WHOLE,
            user_id="u1",
            credential_id=b"c1",
            ip="127.0.0.1",
            detail={"clone_warning": True, "name": "Zoë"},
        )
        use = CredentialUse(credential_id=b"c1", sign_count=2, backed_up=True, used_at=WHOLE)
        outbox = [WebhookEvent(message_id="m1", type="signin.succeeded", body='{"a":1}', created_at=PART)]
        recorded = await storage.sign_ins.record(
            use, session=new, ended_session=old.token_hash, event=event, outbox=outbox
        )
        assert recorded == 1
        # A stale counter: refused, and nothing of it written.
        stale = CredentialUse(credential_id=b"c1", sign_count=2, backed_up=False, used_at=PART)
        other = Session(token_hash=b"x" * 32, user_id="u1", created_at=PART, last_seen_at=PART, expires_at=PART)
        assert await storage.sign_ins.record(stale, session=other, ended_session=None, event=event) is None
        found = await storage.credentials.get_with_owner(b"c1")
        assert found is not None
        found_credential, owner = found
        assert (found_credential.sign_count, found_credential.backed_up, found_credential.last_used_at) == (
            2,
            True,
            WHOLE,
        )
        assert found_credential.transports == ("internal", "hybrid") and owner == user()
        assert await storage.credentials.get_with_owner(b"nobody") is None
    finally:
        await database.dispose()
    with sqlite3.connect(path) as connection:
        return {table: rows_with_types(connection, table) for table in TABLES}


def rows_with_types(connection: sqlite3.Connection, table: str) -> list[tuple[Any, ...]]:
    """Every row, each value followed by SQLite's type of it."""
    names = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
    typed = ", ".join(f"{name}, typeof({name})" for name in names)
    return connection.execute(f"SELECT {typed} FROM {table} ORDER BY 1").fetchall()  # noqa: S608 - our names


async def test_the_direct_path_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    direct = await signed_in(tmp_path / "direct.db", direct=True)
    through_sqlalchemy = await signed_in(tmp_path / "sqlalchemy.db", direct=False)
    assert direct == through_sqlalchemy
    assert len(direct["webhook_outbox"]) == 2 and len(direct["events"]) == 2 and len(direct["users"]) == 1
    session, _signed_up = direct["sessions"]
    assert session[4:6] == ("2026-12-03 12:00:00.123456", "text")  # created_at, as SQLAlchemy writes it
    assert "2026-12-04 12:00:00.000000" in session  # expires_at: whole seconds keep their digits


async def test_a_failing_statement_rolls_the_whole_sign_in_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'passgate.db'}"
    upgrade(url)
    database = Database(url)
    storage = sql_storage(database)
    assert isinstance(storage.sign_ins, SqlSignIns)
    try:
        await storage.users.create_with_credential(user(), credential(sign_count=1))
        taken = Session(token_hash=b"t" * 32, user_id="u1", created_at=WHOLE, last_seen_at=WHOLE, expires_at=PART)
        await storage.sessions.create(taken)
        use = CredentialUse(credential_id=b"c1", sign_count=5, backed_up=True, used_at=WHOLE)
        event = Event(type="sign_in", outcome="success", created_at=WHOLE, user_id="u1")
        try:  # the new session's key is taken: the insert fails after the counter moved
            await storage.sign_ins.record(use, session=taken, ended_session=None, event=event)
        except sqlite3.IntegrityError:
            pass
        else:
            raise AssertionError("a duplicate session was stored")
        stored = await storage.credentials.get(b"c1")
        assert stored is not None and stored.sign_count == 1  # the counter's move was rolled back with it
        assert await storage.events.list() == []
    finally:
        await database.dispose()


def test_queueing_a_webhook_event_binds_no_bare_like_pattern() -> None:
    # SQLite recompiles a statement on every run when a LIKE's pattern is a bare parameter; every event
    # queued on every ceremony would pay for it.
    sql = str(QUEUE_WEBHOOK.compile(dialect=sqlite.dialect()))
    assert sql.count("LIKE") == 3 and "LIKE ?" not in sql
