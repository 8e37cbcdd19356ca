"""passgate.service.admin over real storage: deletion leaves nothing of the person in any table (SQLite and
PostgreSQL), a session read just before its account was disabled lets nothing in, events are exported in batches."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from passgate.core.errors import AccountDisabled
from passgate.core.policy import Policy
from passgate.service import admin, authentication, registration, sessions
from passgate.service.admin import Actor
from passgate.service.context import Client, Context, RelyingParty
from passgate.store.base import (
    AuthorizationCode,
    BackupCode,
    Credential,
    EmailToken,
    Event,
    EventQuery,
    PendingChallenge,
    QueuedMail,
    RefreshToken,
    SessionClient,
    Storage,
    StoredPassword,
    User,
)
from passgate.store.factory import open_storage
from passgate.store.memory import memory_storage
from passgate.store.migrate import upgrade
from passgate.store.schema import metadata
from passgate.store.sql import sync_url
from tests.services import PostgresServer

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ACTOR = Actor(admin_key="ops", client=Client(ip="127.0.0.1", user_agent="test"))
_databases = itertools.count()


def context(storage: Storage, secret_key: bytes = b"s" * 32) -> Context:
    rp = RelyingParty(rp_id="localhost", rp_name="Test", origins=("http://localhost:8000",), policy=Policy())
    return Context(rp=dataclasses.replace(rp, secret_key=secret_key), storage=storage, clock=lambda: NOW)


def person(user_id: str, name: str) -> User:
    return User(
        id=user_id,
        username=name,
        display_name=name.title(),
        user_handle=user_id.encode().ljust(32, b"."),
        created_at=NOW,
        email=f"{name}@example.com",
        email_verified_at=NOW,
        external_id=f"legacy-{name}",
    )


def passkey(credential_id: bytes, user_id: str) -> Credential:
    return Credential(
        credential_id=credential_id,
        user_id=user_id,
        public_key=b"\xa5key",
        algorithm=-7,
        sign_count=0,
        aaguid="00000000-0000-0000-0000-000000000000",
        attestation_format="none",
        transports=("internal",),
        backup_eligible=True,
        backed_up=True,
        user_verified=True,
        created_at=NOW,
    )


async def populate(storage: Storage, user: User, tag: bytes) -> None:
    """Something of the person in every table that can hold it."""
    await storage.users.create_imported(
        user,
        [passkey(tag * 8, user.id)],
        StoredPassword(user_id=user.id, hash="$2b$04$" + tag.decode() * 8, created_at=NOW, updated_at=NOW),
    )
    ctx = context(storage)
    _token, session = sessions.new_session(ctx, user.id, credential_id=tag * 8)
    await storage.sessions.create(session)
    await storage.backup_codes.replace(
        user.id, [BackupCode(user_id=user.id, number=1, code_hash=tag * 32, salt=tag * 16, created_at=NOW)]
    )
    await storage.email_tokens.put(
        EmailToken(
            token_hash=tag * 32,
            purpose="verify_email",
            user_id=user.id,
            email=user.email or "",
            browser=None,
            created_at=NOW,
            expires_at=NOW + timedelta(hours=1),
        )
    )
    await storage.challenges.put(
        PendingChallenge(
            id=tag * 32,
            challenge=tag * 32,
            ceremony="registration",
            browser=tag * 32,
            user_id=user.id,
            pending_user={"purpose": "upgrade", "sid": session.sid},
            expires_at=NOW + timedelta(minutes=5),
        )
    )
    await storage.authorization_codes.add(
        AuthorizationCode(
            code_hash=tag * 32,
            client_id="shop",
            user_id=user.id,
            redirect_uri="https://shop.example/cb",
            scope="openid",
            nonce=None,
            code_challenge="c" * 43,
            sid=session.sid or "",
            auth_time=NOW,
            amr=("pop",),
            acr=None,
            created_at=NOW,
            expires_at=NOW + timedelta(minutes=1),
        )
    )
    await storage.session_clients.record(
        SessionClient(token_hash=tag * 32, sid=session.sid or "", user_id=user.id, client_id="shop", recorded_at=NOW)
    )
    await storage.refresh_tokens.add(
        RefreshToken(
            token_hash=tag * 32,
            family_id="family-" + user.id,
            client_id="shop",
            user_id=user.id,
            sid=session.sid or "",
            scope="openid offline_access",
            auth_time=NOW,
            amr=("pop",),
            acr=None,
            generation=0,
            access_token_jti="jti-" + user.id,
            created_at=NOW,
            expires_at=NOW + timedelta(days=1),
            family_expires_at=NOW + timedelta(days=2),
        )
    )
    await storage.consents.grant(user.id, "partner", ["openid"], NOW)
    await storage.mail.enqueue(
        QueuedMail(
            id="mail-" + user.id,
            recipient=(user.email or "").upper(),
            subject="Hello",
            body=b"sealed",
            created_at=NOW,
            next_attempt_at=NOW,
        )
    )
    await storage.events.record(
        Event(
            type="user.imported",
            outcome="success",
            created_at=NOW,
            user_id=user.id,
            detail={"external_id": user.external_id, "username": user.username, "passkeys": 1},
        )
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        url = postgres.create_database(f"admin_{next(_databases)}")
    else:
        url = f"sqlite:///{tmp_path}/admin.db"
    upgrade(url)
    yield url


def every_row(database_url: str) -> dict[str, list[str]]:
    """Each table of the schema, its rows as text."""
    engine = sa.create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            return {
                table.name: [" ".join(str(value) for value in row) for row in connection.execute(sa.select(table))]
                for table in metadata.sorted_tables
            }
    finally:
        engine.dispose()


async def test_deleting_leaves_nothing_of_the_person_in_any_table(database_url: str) -> None:
    storage, close = open_storage(database_url)
    try:
        ada, bob = person("ada-id-0123", "ada"), person("bob-id-4567", "bob")
        await populate(storage, ada, b"a")
        await populate(storage, bob, b"b")
        ctx = context(storage)
        before = every_row(database_url)
        assert all(any(ada.id in row for row in before[table]) for table in ("users", "sessions", "refresh_tokens"))
        ended = await admin.delete(ctx, ACTOR, ada.id)
        assert ended.sessions == 1
    finally:
        await close()
    after = every_row(database_url)
    for table, rows in after.items():
        for row in rows:
            for trace in (ada.id, ada.username, "ada@example.com", "ADA@EXAMPLE.COM", "legacy-ada"):
                assert trace not in row, (table, row)
    # Bob keeps everything; the events stay, under a pseudonym.
    for table in ("users", "credentials", "passwords", "sessions", "backup_codes", "email_tokens", "consents"):
        assert any(bob.id in row for row in after[table]), table
    alias = admin.pseudonym(ctx, ada.id)
    assert sum(alias in row for row in after["events"]) == 2  # the import, and the deletion naming the key
    assert any("admin.user.delete" in row and "'admin_key': 'ops'" in row for row in after["events"])


def test_the_pseudonym_is_stable_and_keyed() -> None:
    one, other = context(memory_storage()), context(memory_storage(), secret_key=b"t" * 32)
    assert admin.pseudonym(one, "u1") == admin.pseudonym(one, "u1")
    assert admin.pseudonym(one, "u1") != admin.pseudonym(one, "u2")
    assert admin.pseudonym(one, "u1") != admin.pseudonym(other, "u1")
    assert len(admin.pseudonym(one, "u1")) <= 32  # fits the events' user_id column


async def test_a_session_read_before_its_account_was_disabled_starts_no_ceremony() -> None:
    storage = memory_storage()
    ctx = context(storage)
    ada = person("ada-id", "ada")
    await storage.users.create_with_credential(ada, passkey(b"a" * 8, ada.id))
    token, session = sessions.new_session(ctx, ada.id, credential_id=b"a" * 8)
    await storage.sessions.create(session)
    stale = await sessions.resolve(ctx, token)
    assert stale is not None
    await admin.disable(ctx, ACTOR, ada.id)
    assert await sessions.resolve(ctx, token) is None
    stale = dataclasses.replace(stale, user=dataclasses.replace(stale.user, disabled_at=NOW))
    with pytest.raises(AccountDisabled):
        await registration.begin(ctx, Client(), signed_in=stale)
    with pytest.raises(AccountDisabled):
        await authentication.begin(ctx, Client(), step_up=stale.user)
    # A token whose session somehow outlived the disable (restored from a backup, say) is refused too.
    await storage.sessions.create(session)
    assert await sessions.resolve(ctx, token) is None
    assert await storage.sessions.get(session.token_hash) is None


class CountedAdmin:
    """The memory admin store, with the page sizes it was asked for."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.limits: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def events(self, query: EventQuery, *, limit: int) -> list[Event]:
        self.limits.append(limit)
        found: list[Event] = await self.inner.events(query, limit=limit)
        return found


async def test_the_export_reads_events_in_batches_newest_first() -> None:
    storage = memory_storage()
    total = admin.EXPORT_BATCH * 2 + 7
    for number in range(total):
        await storage.events.record(
            Event(type="sign_in", outcome="success", created_at=NOW + timedelta(seconds=number), user_id="u1")
        )
    await storage.events.record(Event(type="sign_in", outcome="success", created_at=NOW, user_id="u2"))
    counted = CountedAdmin(storage.admin)
    ctx = context(dataclasses.replace(storage, admin=counted))
    exported = [event.id async for event in admin.export_events(ctx, EventQuery(user_id="u1"))]
    assert len(exported) == total and exported == sorted(exported, reverse=True)
    assert counted.limits == [admin.EXPORT_BATCH] * 3
