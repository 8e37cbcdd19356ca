"""One contract every storage adapter passes (memory, SQLite; more backends join the parametrization)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from passgate.core.errors import (
    AdminKeyExists,
    ChallengeNotFound,
    ClientExists,
    CredentialExists,
    EmailTaken,
    UsernameTaken,
)
from passgate.core.oidc_clients import OidcClient, hash_secret
from passgate.store.base import (
    AccountStats,
    AdminKey,
    AuthorizationCode,
    BackupCode,
    Consent,
    Credential,
    CredentialUse,
    EmailToken,
    Event,
    EventQuery,
    MailKind,
    PasswordGroup,
    PendingChallenge,
    QueuedMail,
    RefreshToken,
    Removal,
    Session,
    SessionClient,
    SigningKey,
    Spend,
    Storage,
    StoredPassword,
    User,
    hash_tag,
)
from passgate.store.factory import open_storage
from passgate.store.memory import MemoryChallenges, memory_storage
from passgate.store.migrate import upgrade
from passgate.store.redis import connect
from passgate.store.sql import sync_url
from tests.services import PostgresServer, RedisServer

# Redis expires keys by the wall clock, so the contract runs at the real time.
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Backend:
    name: str
    database_url: str = ""  # empty: in memory
    redis_url: str = ""


DATABASES = ["sqlite", "postgresql", "sqlite+redis"]


@pytest.fixture(params=["memory", *DATABASES])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return await _backend(request, tmp_path)


@pytest.fixture(params=DATABASES)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A backend that keeps its data outside the process: several storages can open it at once."""
    return await _backend(request, tmp_path)


async def _backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "memory":
        return Backend(request.param)
    redis_url = ""
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        url = postgres.create_database(f"contract_{next(_databases)}")
    else:
        url = f"sqlite:///{tmp_path}/contract.db"
    if request.param.endswith("+redis"):
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        redis_url = redis_server.url
        await flush(redis_url)
    upgrade(url)
    return Backend(request.param, url, redis_url)


@pytest.fixture
async def storage(backend: Backend) -> AsyncIterator[Storage]:
    if not backend.database_url:
        yield memory_storage()
        return
    storage, close = open_storage(backend.database_url, backend.redis_url)
    yield storage
    await close()


_databases = itertools.count()


async def flush(redis_url: str) -> None:
    client = connect(redis_url)
    await client.flushdb()
    await client.aclose()


def user(name: str = "Alice", user_id: str = "u1") -> User:
    return User(id=user_id, username=name, display_name=name, user_handle=user_id.encode() * 16, created_at=NOW)


def credential(credential_id: bytes = b"c1", user_id: str = "u1", sign_count: int = 0) -> Credential:
    return Credential(
        credential_id=credential_id,
        user_id=user_id,
        public_key=b"\xa5key",
        algorithm=-7,
        sign_count=sign_count,
        aaguid="00000000-0000-0000-0000-000000000000",
        attestation_format="none",
        transports=("internal", "hybrid"),
        backup_eligible=True,
        backed_up=False,
        user_verified=True,
        created_at=NOW,
    )


async def test_user_and_first_credential_round_trip(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    assert await storage.users.get("u1") == user()
    assert await storage.users.by_username("ALICE") == user()
    assert await storage.users.by_username("bob") is None
    assert await storage.credentials.get(b"c1") == credential()
    assert await storage.credentials.list_for_user("u1") == [credential()]


async def test_usernames_are_unique_case_insensitively(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    with pytest.raises(UsernameTaken):
        await storage.users.create_with_credential(user("alice", "u2"), credential(b"c2", "u2"))
    assert await storage.users.get("u2") is None
    assert await storage.credentials.get(b"c2") is None


async def test_an_account_is_not_created_when_its_credential_exists(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    with pytest.raises(CredentialExists):
        await storage.users.create_with_credential(user("Bob", "u2"), credential(b"c1", "u2"))
    assert await storage.users.get("u2") is None
    assert await storage.users.by_username("Bob") is None


async def test_an_imported_account_comes_with_its_passkeys_and_password(storage: Storage) -> None:
    imported = dataclasses.replace(user(), external_id="legacy-17", user_handle=b"17")
    passkeys = [dataclasses.replace(credential(b"i1"), created_by="import"), credential(b"i2")]
    password = StoredPassword(user_id="u1", hash="$2b$04$abc", created_at=NOW, updated_at=NOW)
    await storage.users.create_imported(imported, passkeys, password)
    assert await storage.users.by_external_id("legacy-17") == imported
    assert await storage.users.by_external_id("LEGACY-17") is None
    assert await storage.credentials.list_for_user("u1") == passkeys
    assert await storage.passwords.get("u1") == password
    assert await storage.passwords.count() == 1


@pytest.mark.parametrize("clash", ["username", "external_id", "user_handle", "credential"])
async def test_an_import_that_clashes_stores_nothing(storage: Storage, clash: str) -> None:
    await storage.users.create_imported(
        dataclasses.replace(user(), external_id="legacy-1"),
        [credential()],
        StoredPassword(user_id="u1", hash="x", created_at=NOW, updated_at=NOW),
    )
    other = dataclasses.replace(user("Bob", "u2"), external_id="legacy-2")
    other = dataclasses.replace(
        other,
        username="alice" if clash == "username" else "Bob",
        external_id="legacy-1" if clash == "external_id" else "legacy-2",
        user_handle=user().user_handle if clash == "user_handle" else other.user_handle,
    )
    passkeys = [credential(b"c9", "u2"), credential(b"c1" if clash == "credential" else b"c8", "u2")]
    password = StoredPassword(user_id="u2", hash="y", created_at=NOW, updated_at=NOW)
    with pytest.raises(CredentialExists if clash == "credential" else UsernameTaken):
        await storage.users.create_imported(other, passkeys, password)
    assert await storage.users.get("u2") is None
    assert await storage.credentials.get(b"c9") is None
    assert await storage.passwords.get("u2") is None
    assert await storage.passwords.count() == 1


async def test_a_password_is_rehashed_only_from_the_hash_it_had(storage: Storage) -> None:
    old = StoredPassword(user_id="u1", hash="old", created_at=NOW, updated_at=NOW)
    await storage.users.create_imported(user(), [], old)
    later = NOW + timedelta(minutes=1)
    assert not await storage.passwords.rehash("u1", old_hash="other", new_hash="new", at=later)
    assert await storage.passwords.get("u1") == old
    assert await storage.passwords.rehash("u1", old_hash="old", new_hash="new", at=later)
    assert await storage.passwords.get("u1") == dataclasses.replace(old, hash="new", updated_at=later)
    assert not await storage.passwords.rehash("u1", old_hash="old", new_hash="newer", at=later)
    assert not await storage.passwords.rehash("nobody", old_hash="old", new_hash="new", at=later)


async def test_an_import_records_its_event_with_the_account(storage: Storage) -> None:
    imported = dataclasses.replace(user(), external_id="legacy-1")
    recorded = Event(type="user.imported", outcome="success", created_at=NOW, user_id="u1", detail={"passkeys": 1})
    await storage.users.create_imported(imported, [credential()], None, event=recorded)
    clashing = Event(type="user.imported", outcome="success", created_at=NOW, user_id="u2")
    with pytest.raises(UsernameTaken):
        await storage.users.create_imported(user("alice", "u2"), [], None, event=clashing)
    events = await storage.events.list(type="user.imported")
    assert [(e.user_id, e.detail) for e in events] == [("u1", {"passkeys": 1})]


async def test_an_account_is_found_by_its_user_handle(storage: Storage) -> None:
    await storage.users.create_imported(dataclasses.replace(user(), user_handle=b"legacy-user-0042"), [], None)
    found = await storage.users.by_user_handle(b"legacy-user-0042")
    assert found is not None and found.id == "u1"
    assert await storage.users.by_user_handle(b"LEGACY-USER-0042") is None


async def test_an_import_with_an_address_another_account_verified_stores_nothing(storage: Storage) -> None:
    verified = dataclasses.replace(user(), email="ada@example.com", email_verified_at=NOW)
    await storage.users.create_imported(verified, [], None)
    other = dataclasses.replace(user("Bob", "u2"), email="ADA@example.com", email_verified_at=NOW)
    with pytest.raises(EmailTaken):
        await storage.users.create_imported(other, [credential(b"c2", "u2")], None)
    assert await storage.users.get("u2") is None and await storage.credentials.get(b"c2") is None
    unverified = dataclasses.replace(other, email_verified_at=None)
    await storage.users.create_imported(unverified, [], None)  # an unverified address belongs to nobody
    found = await storage.users.by_email("ada@example.com")
    assert found is not None and found.id == "u1"


async def test_account_stats_count_who_still_needs_a_password(storage: Storage) -> None:
    assert await storage.users.stats() == AccountStats(accounts=0, upgraded=0, passwords=())

    def password(user_id: str, stored: str) -> StoredPassword:
        return StoredPassword(user_id=user_id, hash=stored, created_at=NOW, updated_at=NOW)

    await storage.users.create_with_credential(user("Passkey", "u1"), credential(b"c1", "u1"))
    await storage.users.create_imported(user("Only", "u2"), [], password("u2", "$2b$12$aaaa"))
    await storage.users.create_imported(user("Both", "u3"), [credential(b"c3", "u3")], password("u3", "$2b$10$bbbb"))
    moved = dataclasses.replace(credential(b"c4", "u4"), created_by="upgrade")
    await storage.users.create_imported(user("Moved", "u4"), [moved], password("u4", "$argon2id$v=19$m=1$cc"))
    await storage.users.create_imported(user("Django", "u5"), [], password("u5", "pbkdf2_sha256$1$dd"))
    await storage.users.create_imported(user("Nothing", "u6"), [], None)
    assert await storage.users.stats() == AccountStats(
        accounts=6,
        upgraded=1,
        passwords=(
            PasswordGroup(tag="$2b$", sample="$2b$10$bbbb", accounts=2, without_passkey=1),
            PasswordGroup(tag="$argon2id$", sample="$argon2id$v=19$m=1$cc", accounts=1, without_passkey=0),
            PasswordGroup(tag="pbkdf2_sha256$", sample="pbkdf2_sha256$1$dd", accounts=1, without_passkey=1),
        ),
    )


def test_a_hash_tag_is_its_text_up_to_the_first_dollar_after_the_first_character() -> None:
    assert hash_tag("$2b$12$salt") == "$2b$"
    assert hash_tag("pbkdf2_sha256$600000$salt$hash") == "pbkdf2_sha256$"
    assert hash_tag("$argon2id") == "$"
    assert hash_tag("plain") == "p"


async def test_a_password_is_removed_once(storage: Storage) -> None:
    await storage.users.create_imported(
        user(), [credential()], StoredPassword(user_id="u1", hash="h", created_at=NOW, updated_at=NOW)
    )
    await storage.users.create_with_credential(user("Bob", "u2"), credential(b"c2", "u2"))
    assert await storage.passwords.count() == 1
    assert await storage.passwords.remove("u1")
    assert not await storage.passwords.remove("u1")
    assert await storage.passwords.get("u1") is None
    assert await storage.passwords.count() == 0


async def test_more_credentials(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.credentials.add(credential(b"c2"))
    with pytest.raises(CredentialExists):
        await storage.credentials.add(credential(b"c2"))
    assert [c.credential_id for c in await storage.credentials.list_for_user("u1")] == [b"c1", b"c2"]


async def test_record_use_only_moves_the_counter_forward(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential(sign_count=5))
    later = NOW + timedelta(hours=1)
    assert await storage.credentials.record_use(b"c1", sign_count=6, backed_up=True, used_at=later)
    stored = await storage.credentials.get(b"c1")
    assert stored is not None and (stored.sign_count, stored.backed_up, stored.last_used_at) == (6, True, later)
    assert not await storage.credentials.record_use(b"c1", sign_count=6, backed_up=False, used_at=later)
    stored = await storage.credentials.get(b"c1")
    assert stored is not None and stored.sign_count == 6 and stored.backed_up is True
    # Counter-less authenticators (0) are always recorded.
    assert await storage.credentials.record_use(b"c1", sign_count=0, backed_up=True, used_at=later)


async def test_concurrent_uses_with_one_counter_value_succeed_once(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential(sign_count=1))
    results = await asyncio.gather(
        *(storage.credentials.record_use(b"c1", sign_count=2, backed_up=False, used_at=NOW) for _ in range(5))
    )
    assert sorted(results) == [False, False, False, False, True]


async def test_a_challenge_is_taken_once(storage: Storage) -> None:
    pending = PendingChallenge(
        id=b"i" * 32,
        challenge=b"c" * 32,
        ceremony="registration",
        browser=b"b" * 32,
        user_id=None,
        pending_user={"username": "x"},
        # Redis expires a challenge by the real clock: NOW (this module's import) may be minutes ago by now.
        expires_at=NOW + timedelta(days=1),
    )
    await storage.challenges.put(pending)
    results = await asyncio.gather(*(storage.challenges.take(b"i" * 32) for _ in range(4)))
    assert [r for r in results if r is not None] == [pending]
    assert await storage.challenges.take(b"i" * 32) is None


async def test_a_sealed_challenge_is_spent_once_whichever_node_answers(storage: Storage) -> None:
    # Redis expires a mark by the real clock: NOW (this module's import) may be minutes ago by now.
    until = NOW + timedelta(days=1)
    await storage.challenges.issued(b"s" * 32, until)
    results = await asyncio.gather(*(storage.challenges.spend(b"s" * 32, until) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    assert await storage.challenges.spend(b"s" * 32, until) is False
    await storage.challenges.issued(b"t" * 32, until)  # another challenge is not spent by this one
    assert await storage.challenges.spend(b"t" * 32, until) is True


async def test_purging_forgets_spent_challenges_only_after_they_expire(storage: Storage) -> None:
    before, after = NOW - timedelta(seconds=1), NOW + timedelta(days=1)
    for name, until in ((b"old", before), (b"new", after)):
        await storage.challenges.issued(name.ljust(32, b"."), until)
        assert await storage.challenges.spend(name.ljust(32, b"."), until)
    await storage.challenges.purge_expired(NOW)
    assert await storage.challenges.spend(b"new".ljust(32, b"."), after) is False  # still refused
    if isinstance(storage.challenges, MemoryChallenges):
        await storage.challenges.issued(b"old".ljust(32, b"."), before)
        assert await storage.challenges.purge_expired(NOW) == 1  # an outstanding, abandoned one is forgotten
        assert await storage.challenges.spend(b"old".ljust(32, b"."), before) is False
    else:
        # The mark is gone (Redis expired it itself: it was set to expire in the past).
        assert await storage.challenges.spend(b"old".ljust(32, b"."), before) is True


async def test_sessions(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    session = Session(
        token_hash=b"t" * 32, user_id="u1", created_at=NOW, last_seen_at=NOW, expires_at=NOW + timedelta(days=1)
    )
    await storage.sessions.create(session)
    assert await storage.sessions.get(b"t" * 32) == session
    await storage.sessions.touch(b"t" * 32, NOW + timedelta(minutes=3))
    touched = await storage.sessions.get(b"t" * 32)
    assert touched is not None and touched.last_seen_at == NOW + timedelta(minutes=3)
    await storage.sessions.delete(b"t" * 32)
    assert await storage.sessions.get(b"t" * 32) is None


async def test_active_sessions_are_counted_as_purging_would_keep_them(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    day, hour = timedelta(days=1), timedelta(hours=1)
    lives = {b"a": (NOW, NOW + day), b"b": (NOW - 2 * hour, NOW + day), b"c": (NOW, NOW - hour)}
    for name, (last_seen, expires) in lives.items():
        await storage.sessions.create(
            Session(
                token_hash=name * 32, user_id="u1", created_at=NOW - day, last_seen_at=last_seen, expires_at=expires
            )
        )
    assert await storage.sessions.count_active(NOW, hour) == 1  # b idle too long, c past its end
    assert await storage.sessions.count_active(NOW, 3 * hour) == 2
    await storage.sessions.purge_expired(NOW, hour)
    assert await storage.sessions.count_active(NOW, 3 * hour) == 1


async def test_events_newest_first_and_by_user(storage: Storage) -> None:
    for number in range(3):
        await storage.events.record(
            Event(
                type="sign_in",
                outcome="success",
                created_at=NOW,
                user_id="u1" if number != 1 else "u2",
                detail={"n": number},
            )
        )
    events = await storage.events.list()
    assert [e.detail["n"] for e in events] == [2, 1, 0]
    assert [e.detail["n"] for e in await storage.events.list(user_id="u1", limit=1)] == [2]


async def test_purging_removes_only_what_has_ended(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    # Redis expires a challenge by the real clock: NOW (this module's import) may be minutes ago by now.
    for name, expires in ((b"old", NOW - timedelta(seconds=1)), (b"new", NOW + timedelta(days=1))):
        await storage.challenges.put(
            PendingChallenge(
                id=name.ljust(32, b"."),
                challenge=b"c" * 32,
                ceremony="authentication",
                browser=b"b" * 32,
                user_id=None,
                pending_user=None,
                expires_at=expires,
            )
        )
    purged = await storage.challenges.purge_expired(NOW)
    assert purged == 1
    assert await storage.challenges.take(b"new".ljust(32, b".")) is not None
    idle = timedelta(hours=1)
    sessions = {
        b"ended": (NOW - timedelta(days=2), NOW - timedelta(seconds=1)),
        b"idle": (NOW - timedelta(hours=2), NOW + timedelta(days=1)),
        b"live": (NOW - timedelta(minutes=5), NOW + timedelta(days=1)),
    }
    for name, (seen, expires) in sessions.items():
        await storage.sessions.create(
            Session(
                token_hash=name.ljust(32, b"."), user_id="u1", created_at=seen, last_seen_at=seen, expires_at=expires
            )
        )
    assert await storage.sessions.purge_expired(NOW, idle) == 2
    assert await storage.sessions.get(b"live".ljust(32, b".")) is not None
    assert await storage.sessions.get(b"idle".ljust(32, b".")) is None


async def test_a_sign_in_is_recorded_all_or_nothing(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential(sign_count=3))
    await storage.webhooks.put_endpoint(endpoint("all", ("*",)))
    await storage.webhooks.put_endpoint(endpoint("clones", ("passkey.clone_suspected",)))
    outbox = [webhook("m1", "signin.succeeded"), webhook("m2", "passkey.clone_suspected")]
    old = Session(
        token_hash=b"o" * 32, user_id="u1", created_at=NOW, last_seen_at=NOW, expires_at=NOW + timedelta(days=1)
    )
    await storage.sessions.create(old)
    assert await storage.sessions.get(old.token_hash) == old  # cached, where a cache exists
    new = Session(
        token_hash=b"n" * 32, user_id="u1", created_at=NOW, last_seen_at=NOW, expires_at=NOW + timedelta(days=1)
    )
    event = Event(
        type="sign_in", outcome="success", created_at=NOW, user_id="u1", credential_id=b"c1", detail={"a": "Zoë"}
    )
    later = NOW + timedelta(minutes=1)
    stale = CredentialUse(credential_id=b"c1", sign_count=3, backed_up=True, used_at=later)
    assert (
        await storage.sign_ins.record(stale, session=new, ended_session=old.token_hash, event=event, outbox=outbox)
        is None
    )
    assert await storage.sessions.get(new.token_hash) is None
    assert await storage.sessions.get(old.token_hash) == old
    assert await storage.events.list() == []
    assert await storage.webhooks.list_deliveries() == []
    fresh = CredentialUse(credential_id=b"c1", sign_count=4, backed_up=True, used_at=later)
    recorded = await storage.sign_ins.record(
        fresh, session=new, ended_session=old.token_hash, event=event, outbox=outbox
    )
    assert recorded == 3  # the deliveries queued
    queued = sorted((d.endpoint_id, d.message_id) for d in await storage.webhooks.list_deliveries())
    assert queued == [("all", "m1"), ("all", "m2"), ("clones", "m2")]
    assert await storage.sessions.get(new.token_hash) == new
    assert await storage.sessions.get(old.token_hash) is None  # rotated, cache included
    stored = await storage.credentials.get(b"c1")
    assert stored is not None and (stored.sign_count, stored.backed_up, stored.last_used_at) == (4, True, later)
    assert [(e.type, e.credential_id, e.detail) for e in await storage.events.list()] == [
        ("sign_in", b"c1", {"a": "Zoë"})
    ]


async def test_profile_and_email(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.users.set_display_name("u1", "Alice A.")
    await storage.users.set_email("u1", "Alice@Example.com", verified_at=None)
    assert await storage.users.by_email("alice@example.com") is None  # not verified yet
    await storage.users.set_email("u1", "Alice@Example.com", verified_at=NOW)
    found = await storage.users.by_email("alice@EXAMPLE.com")
    assert found is not None and found.display_name == "Alice A." and found.email_verified_at == NOW
    await storage.users.dismiss_nudge("u1")
    stored = await storage.users.get("u1")
    assert stored is not None and stored.nudge_dismissed is True


async def test_email_addresses_are_compared_by_their_normalized_form(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    # Python's casefold() and SQL's lower() disagree here: "ß" folds to "ss", "É" is not ASCII.
    await storage.users.set_email("u1", "Straße.ÉLODIE@example.com", verified_at=NOW)
    wide = "\uff33\uff34\uff32\uff21\uff33\uff33\uff25"  # STRASSE in fullwidth letters
    for spelling in ("Straße.ÉLODIE@example.com", "strasse.élodie@example.com", f"{wide}.Élodie@Example.COM"):
        found = await storage.users.by_email(spelling)
        assert found is not None and found.id == "u1", spelling
    stored = await storage.users.get("u1")
    assert stored is not None and stored.email == "Straße.ÉLODIE@example.com"  # kept as typed, for sending


async def test_a_verified_address_belongs_to_one_account(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.users.create_with_credential(user("Bob", "u2"), credential(b"c2", "u2"))
    await storage.users.set_email("u1", "Alice@Example.com", verified_at=NOW)
    await storage.users.set_email("u2", "alice@example.com", verified_at=None)  # unverified: anyone may type it
    with pytest.raises(EmailTaken):
        await storage.users.set_email("u2", "ALICE@example.com", verified_at=NOW)
    bob = await storage.users.get("u2")
    assert bob is not None and bob.email == "alice@example.com" and bob.email_verified_at is None
    found = await storage.users.by_email("alice@example.com")
    assert found is not None and found.id == "u1"
    await storage.users.set_email("u1", "Alice@Example.com", verified_at=NOW)  # the owner again: no conflict
    # Once the owner changes address, the old one is free to verify elsewhere.
    await storage.users.set_email("u1", "new@example.com", verified_at=None)
    await storage.users.set_email("u2", "alice@example.com", verified_at=NOW)
    found = await storage.users.by_email("Alice@example.com")
    assert found is not None and found.id == "u2"


async def test_rename_and_remove_are_scoped_to_the_owner(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.users.create_with_credential(user("Bob", "u2"), credential(b"c2", "u2"))
    assert await storage.credentials.rename(b"c1", "u1", "Laptop")
    assert not await storage.credentials.rename(b"c1", "u2", "Stolen")
    stored = await storage.credentials.get(b"c1")
    assert stored is not None and stored.nickname == "Laptop"
    assert (await storage.credentials.remove(b"c1", "u2")).outcome == "not_found"
    assert (await storage.credentials.remove(b"c1", "u1")).outcome == "last_passkey"
    await storage.credentials.add(credential(b"c3", "u1"))
    assert (await storage.credentials.remove(b"c1", "u1")).outcome == "removed"
    assert await storage.credentials.list_for_user("u1") == [credential(b"c3", "u1")]


async def test_the_last_passkey_goes_only_with_another_way_in(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    code = BackupCode(user_id="u1", number=0, code_hash=b"h" * 32, salt=b"s" * 16, created_at=NOW)
    await storage.backup_codes.replace("u1", [code])
    await storage.backup_codes.use("u1", 0, NOW)
    await storage.users.set_email("u1", "a@example.com", verified_at=None)
    # A used code and an unverified address are no way in.
    assert (await storage.credentials.remove(b"c1", "u1")).outcome == "last_passkey"
    await storage.users.set_email("u1", "a@example.com", verified_at=NOW)
    assert (await storage.credentials.remove(b"c1", "u1")).outcome == "removed"
    await storage.users.create_with_credential(user("Bob", "u2"), credential(b"c2", "u2"))
    await storage.backup_codes.replace("u2", [dataclasses.replace(code, user_id="u2")])
    assert (await storage.credentials.remove(b"c2", "u2")).outcome == "removed"
    assert await storage.credentials.list_for_user("u1") == await storage.credentials.list_for_user("u2") == []


async def test_concurrent_removals_keep_the_last_passkey(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.credentials.add(credential(b"c2"))
    removals = await asyncio.gather(storage.credentials.remove(b"c1", "u1"), storage.credentials.remove(b"c2", "u1"))
    assert sorted(r.outcome for r in removals) == ["last_passkey", "removed"]
    assert len(await storage.credentials.list_for_user("u1")) == 1


ROUNDS = 300


async def test_removals_from_two_processes_keep_the_last_passkey(database: Backend) -> None:
    """Two storages on one database, as two server processes have: each removal in its own thread and event
    loop, started together. (Memory storage belongs to one process by definition.)"""
    storage, close = open_storage(database.database_url, database.redis_url)
    start = threading.Barrier(2, timeout=30)  # a thread that failed breaks it instead of hanging the other

    def remove_all(prefix: bytes) -> list[str]:
        async def run() -> list[str]:
            own, close_own = open_storage(database.database_url, database.redis_url)
            outcomes = []
            try:
                for number in range(ROUNDS):
                    await asyncio.to_thread(start.wait)
                    removal = await own.credentials.remove(prefix + b"%d" % number, f"u{number}")
                    outcomes.append(removal.outcome)
            finally:
                await close_own()
            return outcomes

        return asyncio.run(run())

    try:
        for number in range(ROUNDS):
            owner = f"u{number}"
            await storage.users.create_with_credential(user(owner, owner), credential(b"a%d" % number, owner))
            await storage.credentials.add(credential(b"b%d" % number, owner))
        first, second = await asyncio.gather(asyncio.to_thread(remove_all, b"a"), asyncio.to_thread(remove_all, b"b"))
        emptied = [number for number in range(ROUNDS) if not await storage.credentials.list_for_user(f"u{number}")]
    finally:
        await close()
    assert emptied == []
    assert all(sorted(pair) == ["last_passkey", "removed"] for pair in zip(first, second, strict=True))


async def test_backup_codes_are_single_use(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    codes = [
        BackupCode(user_id="u1", number=n, code_hash=bytes([n]) * 32, salt=b"s" * 16, created_at=NOW) for n in range(3)
    ]
    await storage.backup_codes.replace("u1", codes)
    assert [c.number for c in await storage.backup_codes.unused("u1")] == [0, 1, 2]
    results = await asyncio.gather(*(storage.backup_codes.use("u1", 1, NOW) for _ in range(3)))
    assert sorted(results) == [False, False, True]
    assert [c.number for c in await storage.backup_codes.unused("u1")] == [0, 2]
    await storage.backup_codes.replace("u1", codes[:1])
    assert [c.number for c in await storage.backup_codes.unused("u1")] == [0]


async def test_email_tokens_are_taken_once(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    token = EmailToken(
        token_hash=b"t" * 32,
        purpose="sign_in",
        user_id="u1",
        email="a@example.com",
        browser=b"b" * 32,
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
    )
    await storage.email_tokens.put(token)
    results = await asyncio.gather(
        *(storage.email_tokens.take(b"t" * 32, purpose="sign_in", browser=b"b" * 32) for _ in range(3))
    )
    assert [r for r in results if r is not None] == [token]
    await storage.email_tokens.put(token)
    assert await storage.email_tokens.purge_expired(NOW + timedelta(minutes=16)) == 1
    assert await storage.email_tokens.take(b"t" * 32, purpose="sign_in", browser=b"b" * 32) is None


async def test_an_email_token_is_taken_only_by_its_browser_and_for_its_purpose(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    bound = EmailToken(
        token_hash=b"t" * 32,
        purpose="sign_in",
        user_id="u1",
        email="a@example.com",
        browser=b"b" * 32,
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=15),
    )
    unbound = EmailToken(
        token_hash=b"v" * 32,
        purpose="verify_email",
        user_id="u1",
        email="a@example.com",
        browser=None,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=24),
    )
    await storage.email_tokens.put(bound)
    await storage.email_tokens.put(unbound)
    # Refused takes leave the token where it was.
    assert await storage.email_tokens.take(b"t" * 32, purpose="sign_in", browser=b"x" * 32) is None
    assert await storage.email_tokens.take(b"t" * 32, purpose="sign_in", browser=None) is None
    assert await storage.email_tokens.take(b"t" * 32, purpose="verify_email", browser=b"b" * 32) is None
    assert await storage.email_tokens.take(b"v" * 32, purpose="sign_in", browser=None) is None
    assert await storage.email_tokens.get(b"t" * 32) == bound
    results = await asyncio.gather(
        *(storage.email_tokens.take(b"t" * 32, purpose="sign_in", browser=b"b" * 32) for _ in range(3))
    )
    assert [r for r in results if r is not None] == [bound]
    assert await storage.email_tokens.get(b"t" * 32) is None
    # A token bound to no browser is taken in any browser, once.
    assert await storage.email_tokens.take(b"v" * 32, purpose="verify_email", browser=b"x" * 32) == unbound
    assert await storage.email_tokens.take(b"v" * 32, purpose="verify_email", browser=None) is None


async def test_session_authentication_and_ending_all(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    for name in (b"a", b"b", b"c"):
        await storage.sessions.create(
            Session(
                token_hash=name * 32,
                user_id="u1",
                created_at=NOW,
                last_seen_at=NOW,
                expires_at=NOW + timedelta(days=1),
                kind="recovery",
            )
        )
        assert await storage.sessions.get(name * 32) is not None  # into the cache, where there is one
    recovering = await storage.sessions.get(b"a" * 32)
    assert recovering is not None and recovering.credential_id is None
    await storage.sessions.mark_authenticated(b"a" * 32, NOW, credential_id=b"c1", user_verified=True)
    upgraded = await storage.sessions.get(b"a" * 32)
    assert upgraded is not None and upgraded.kind == "passkey" and upgraded.authenticated_at == NOW
    assert upgraded.credential_id == b"c1" and upgraded.user_verified
    assert sorted(await storage.sessions.delete_for_user("u1", keep=b"a" * 32)) == [b"b" * 32, b"c" * 32]
    assert await storage.sessions.get(b"b" * 32) is None and await storage.sessions.get(b"c" * 32) is None
    assert await storage.sessions.get(b"a" * 32) is not None


async def test_counters_count_within_a_window(storage: Storage) -> None:
    counts = [(await storage.counters.hit("k", 60, NOW))[0] for _ in range(3)]
    assert counts == [1, 2, 3]
    count, retry_after = await storage.counters.hit("k", 60, NOW + timedelta(seconds=60))
    assert count == 1 and 0 < retry_after <= 60
    assert (await storage.counters.hit("other", 60, NOW))[0] == 1


async def test_a_credential_with_its_owner(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.users.set_email("u1", "a@example.com", verified_at=NOW)
    found = await storage.credentials.get_with_owner(b"c1")
    assert found is not None
    assert found[0] == credential()
    assert found[1] == await storage.users.get("u1")
    assert await storage.credentials.get_with_owner(b"nope") is None


def mail(mail_id: str, *, due: datetime = NOW, created: datetime = NOW, kind: MailKind = "message") -> QueuedMail:
    return QueuedMail(
        id=mail_id,
        recipient=f"{mail_id}@example.com",
        subject=f"about {mail_id}",
        body=b"\x00sealed " + mail_id.encode(),
        created_at=created,
        next_attempt_at=due,
        kind=kind,
    )


LEASE = timedelta(minutes=5)


async def test_mail_is_claimed_by_one_worker_until_its_lease_ends(storage: Storage) -> None:
    await storage.mail.enqueue(mail("m1", created=NOW - timedelta(seconds=2)))
    await storage.mail.enqueue(mail("m2", created=NOW - timedelta(seconds=1)))
    await storage.mail.enqueue(mail("later", due=NOW + timedelta(minutes=1)))
    claimed = await storage.mail.claim(worker="w1", now=NOW, lease=LEASE, limit=10)
    assert [m.id for m in claimed] == ["m1", "m2"]  # due ones only, oldest first
    first = claimed[0]
    assert first.body == b"\x00sealed m1" and first.recipient == "m1@example.com" and first.subject == "about m1"
    assert first.attempts == 1 and first.claimed_by == "w1" and first.claimed_until == NOW + LEASE
    assert await storage.mail.claim(worker="w2", now=NOW, lease=LEASE, limit=10) == []  # leased, or not due
    assert await storage.mail.sent("m1", worker="w1")
    # w1 stopped without finishing m2: once its lease has run out, another worker takes it (a second attempt).
    after = NOW + LEASE + timedelta(seconds=1)
    taken = await storage.mail.claim(worker="w2", now=after, lease=LEASE, limit=10)
    assert [(m.id, m.attempts, m.claimed_by) for m in taken] == [("m2", 2, "w2"), ("later", 1, "w2")]
    assert not await storage.mail.sent("m2", worker="w1")  # its lease is gone: it changes nothing
    assert await storage.mail.sent("m2", worker="w2") and await storage.mail.sent("later", worker="w2")
    assert await storage.mail.list() == []


async def test_mail_that_failed_is_retried_later_or_kept_as_failed(storage: Storage) -> None:
    await storage.mail.enqueue(mail("m1"))
    await storage.mail.enqueue(mail("m2"))
    await storage.mail.claim(worker="w1", now=NOW, lease=LEASE, limit=10)
    retry_at = NOW + timedelta(seconds=30)
    assert await storage.mail.retry("m1", worker="w1", at=retry_at, error="SMTPRecipientsRefused: 451 try later")
    assert await storage.mail.fail("m2", worker="w1", error="SMTPDataError: 554 refused")
    assert not await storage.mail.retry("m2", worker="w1", at=retry_at, error="x")  # failed: no longer held
    # Released at once, but not due before its time.
    assert await storage.mail.claim(worker="w2", now=retry_at - timedelta(seconds=1), lease=LEASE, limit=10) == []
    [again] = await storage.mail.claim(worker="w2", now=retry_at, lease=LEASE, limit=10)
    assert (again.id, again.attempts, again.last_error) == ("m1", 2, "SMTPRecipientsRefused: 451 try later")
    assert [m.id for m in await storage.mail.list(status="queued")] == ["m1"]
    assert await storage.mail.sent("m1", worker="w2")
    # A failed message stays, for the operator, and is never claimed again.
    assert await storage.mail.claim(worker="w3", now=NOW + timedelta(days=30), lease=LEASE, limit=10) == []
    [failed] = await storage.mail.list(status="failed")
    assert (failed.id, failed.status, failed.claimed_by, failed.last_error) == (
        "m2",
        "failed",
        None,
        "SMTPDataError: 554 refused",
    )


async def test_a_job_is_replaced_by_its_message_only_while_its_worker_holds_it(storage: Storage) -> None:
    await storage.mail.enqueue(mail("job", kind="sign_in_link"))
    await storage.mail.enqueue(mail("plain", created=NOW + timedelta(seconds=1)))
    claimed = await storage.mail.claim(worker="w1", now=NOW, lease=LEASE, limit=10)
    assert [(m.id, m.kind) for m in claimed] == [("job", "sign_in_link"), ("plain", "message")]
    message = QueuedMail(
        id="from-job",
        recipient="owner@example.com",
        subject="your link",
        body=b"\x00sealed link",
        created_at=NOW,
        next_attempt_at=NOW,
        attempts=1,
        claimed_by="w1",
        claimed_until=NOW + LEASE,
    )
    assert not await storage.mail.replace("job", worker="w2", by=message)  # not its lease: nothing changes
    assert [(m.id, m.kind) for m in await storage.mail.list()] == [("job", "sign_in_link"), ("plain", "message")]
    assert await storage.mail.replace("job", worker="w1", by=message)
    assert not await storage.mail.replace("job", worker="w1", by=message)  # gone: replaced once
    assert {m.id: m for m in await storage.mail.list()}["from-job"] == message  # stored as given, leased to w1
    # Leased to w1 as the job was: nobody else claims it, and w1 deletes it once sent.
    assert await storage.mail.claim(worker="w2", now=NOW, lease=LEASE, limit=10) == []
    assert await storage.mail.sent("from-job", worker="w1")
    assert [m.id for m in await storage.mail.list()] == ["plain"]


async def test_an_unknown_address_job_is_deleted_like_a_sent_message(storage: Storage) -> None:
    await storage.mail.enqueue(mail("job", kind="sign_in_link"))
    [job] = await storage.mail.claim(worker="w1", now=NOW, lease=LEASE, limit=10)
    assert job.kind == "sign_in_link" and job.recipient == "job@example.com" and job.body == b"\x00sealed job"
    assert await storage.mail.sent("job", worker="w1")
    assert await storage.mail.list() == []


async def test_concurrent_claims_take_each_message_once(storage: Storage) -> None:
    for number in range(12):
        await storage.mail.enqueue(mail(f"m{number:02}", created=NOW - timedelta(seconds=number)))
    batches = await asyncio.gather(
        *(storage.mail.claim(worker=f"w{n}", now=NOW, lease=LEASE, limit=5) for n in range(4))
    )
    ids = [m.id for batch in batches for m in batch]
    assert sorted(ids) == sorted(f"m{number:02}" for number in range(12))
    assert all(len(batch) <= 5 for batch in batches)


def session(name: bytes, credential_id: bytes | None, user_id: str = "u1") -> Session:
    return Session(
        token_hash=name * 32,
        user_id=user_id,
        created_at=NOW,
        last_seen_at=NOW,
        expires_at=NOW + timedelta(days=1),
        authenticated_at=NOW if credential_id else None,
        kind="passkey" if credential_id else "recovery",
        credential_id=credential_id,
    )


async def test_removing_a_passkey_ends_the_sessions_it_opened(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.credentials.add(credential(b"c2"))
    await storage.users.create_with_credential(user("Bob", "u2"), credential(b"c3", "u2"))
    sessions = [
        session(b"p", b"c1"),  # the phone, signed in with c1
        session(b"q", b"c1"),
        session(b"h", b"c1"),  # here: the removal is made from this one
        session(b"l", b"c2"),  # the laptop, signed in with c2
        session(b"r", None),  # a recovery session
        session(b"b", b"c3", "u2"),  # someone else's
    ]
    for each in sessions:
        await storage.sessions.create(each)
        assert await storage.sessions.get(each.token_hash) == each  # into the cache, where there is one
    removal = await storage.credentials.remove(b"c1", "u1", keep_session=b"h" * 32)
    assert removal.outcome == "removed"
    assert sorted(removal.ended_sessions) == [b"p" * 32, b"q" * 32]
    assert await storage.sessions.get(b"p" * 32) is None and await storage.sessions.get(b"q" * 32) is None
    for each in sessions[2:]:
        assert await storage.sessions.get(each.token_hash) == each
    # Without a session to keep, every session the passkey opened ends.
    assert (await storage.credentials.remove(b"c3", "u2")).outcome == "last_passkey"
    assert (await storage.credentials.remove(b"c2", "u1")).outcome == "last_passkey"
    await storage.users.set_email("u1", "a@example.com", verified_at=NOW)
    assert (await storage.credentials.remove(b"c2", "u1")).ended_sessions == (b"l" * 32,)
    assert await storage.sessions.get(b"l" * 32) is None
    assert await storage.sessions.get(b"b" * 32) == sessions[-1]


async def test_a_refused_removal_ends_no_session(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.sessions.create(session(b"p", b"c1"))
    assert await storage.credentials.remove(b"c1", "u1") == Removal(outcome="last_passkey")
    assert await storage.credentials.remove(b"c1", "u2") == Removal(outcome="not_found")
    assert await storage.sessions.get(b"p" * 32) == session(b"p", b"c1")


def oidc_client(client_id: str = "shop", created_at: datetime = NOW, *, public: bool = False) -> OidcClient:
    return OidcClient(
        client_id=client_id,
        name=f"The {client_id}",
        secret_hash=None if public else hash_secret("s" * 43),
        redirect_uris=(f"https://{client_id}.example/callback", "http://127.0.0.1/cb"),
        post_logout_redirect_uris=(f"https://{client_id}.example/",),
        backchannel_logout_uri=None if public else f"https://{client_id}.example/logout",
        scopes=("openid", "email", "offline_access"),
        first_party=not public,
        created_at=created_at,
    )


async def test_oidc_clients_are_added_listed_and_removed(storage: Storage) -> None:
    clients = storage.oidc_clients
    assert await clients.get("shop") is None and await clients.list() == []
    await clients.add(oidc_client("shop", NOW + timedelta(minutes=1)))
    await clients.add(oidc_client("app", NOW, public=True))
    assert await clients.get("shop") == oidc_client("shop", NOW + timedelta(minutes=1))
    assert await clients.get("app") == oidc_client("app", NOW, public=True)
    assert await clients.get("SHOP") is None
    assert [client.client_id for client in await clients.list()] == ["app", "shop"]  # oldest first
    assert await clients.remove("shop") is True
    assert await clients.remove("shop") is False
    assert await clients.get("shop") is None
    assert await clients.list() == [oidc_client("app", NOW, public=True)]


async def test_a_client_id_is_taken_once(storage: Storage) -> None:
    await storage.oidc_clients.add(oidc_client("shop"))
    with pytest.raises(ClientExists):
        await storage.oidc_clients.add(dataclasses.replace(oidc_client("shop"), name="Another"))
    assert await storage.oidc_clients.get("shop") == oidc_client("shop")


async def test_a_credential_keeps_whether_its_attestation_was_verified(storage: Storage) -> None:
    attested = dataclasses.replace(credential(), attested=True)
    await storage.users.create_with_credential(user(), attested)
    await storage.credentials.add(credential(b"c2"))
    assert await storage.credentials.get(b"c1") == attested
    stored = await storage.credentials.get(b"c2")
    assert stored is not None and stored.attested is False
    found = await storage.credentials.get_with_owner(b"c1")
    assert found is not None and found[0].attested


async def test_a_session_is_found_by_its_public_id(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    session = Session(
        token_hash=b"t" * 32,
        user_id="u1",
        created_at=NOW,
        last_seen_at=NOW,
        expires_at=NOW + timedelta(days=1),
        credential_id=b"c1",
        user_verified=True,
        sid="public-id-1",
    )
    await storage.sessions.create(session)
    await storage.sessions.create(dataclasses.replace(session, token_hash=b"u" * 32, sid="public-id-2"))
    await storage.sessions.create(dataclasses.replace(session, token_hash=b"v" * 32, sid=None))
    await storage.sessions.create(dataclasses.replace(session, token_hash=b"w" * 32, sid=None))
    assert await storage.sessions.get(b"t" * 32) == session  # into the cache, where there is one
    assert await storage.sessions.get(b"t" * 32) == session
    assert await storage.sessions.by_sid("public-id-1") == session
    assert await storage.sessions.by_sid("public-id-3") is None
    await storage.sessions.delete(b"t" * 32)
    assert await storage.sessions.by_sid("public-id-1") is None


def signing_key(kid: str, generation: int, alg: str = "ES256", *, signs_from: datetime = NOW) -> SigningKey:
    return SigningKey(
        kid=kid,
        alg="ES256" if alg == "ES256" else "RS256",
        generation=generation,
        public_jwk={"kty": "EC", "kid": kid},
        private_key=b"sealed " + kid.encode(),
        created_at=NOW,
        publish_at=NOW,
        signs_from=signs_from,
    )


async def test_signing_key_generations_retire_their_predecessors(storage: Storage) -> None:
    first = [signing_key("e1", 1), signing_key("r1", 1, "RS256")]
    retire_at, remove_after = NOW + timedelta(minutes=5), NOW + timedelta(hours=1, minutes=5)
    assert await storage.signing_keys.add_generation(first, retire_at=NOW, remove_after=NOW)
    assert await storage.signing_keys.all() == first
    second = [signing_key("e2", 2, signs_from=retire_at), signing_key("r2", 2, "RS256", signs_from=retire_at)]
    assert await storage.signing_keys.add_generation(second, retire_at=retire_at, remove_after=remove_after)
    retired = [dataclasses.replace(key, retired_at=retire_at, remove_after=remove_after) for key in first]
    assert await storage.signing_keys.all() == [*retired, *second]
    # A second set of one generation is refused, and its retirement with it.
    again = [signing_key("e3", 2, signs_from=retire_at), signing_key("r3", 2, "RS256", signs_from=retire_at)]
    assert not await storage.signing_keys.add_generation(again, retire_at=NOW, remove_after=NOW)
    assert await storage.signing_keys.all() == [*retired, *second]
    assert await storage.signing_keys.purge(remove_after - timedelta(seconds=1)) == 0
    assert await storage.signing_keys.purge(remove_after) == 2
    assert await storage.signing_keys.all() == second


async def test_nodes_making_the_first_keys_together_store_one_set(database: Backend) -> None:
    """Several storages on one database, as nodes starting together have, each adding a generation 1."""
    start = threading.Barrier(4, timeout=30)

    def add(number: int) -> bool:
        async def run() -> bool:
            own, close_own = open_storage(database.database_url, database.redis_url)
            try:
                keys = [signing_key(f"e{number}", 1), signing_key(f"r{number}", 1, "RS256")]
                await asyncio.to_thread(start.wait)
                return await own.signing_keys.add_generation(keys, retire_at=NOW, remove_after=NOW)
            finally:
                await close_own()

        return asyncio.run(run())

    results = await asyncio.gather(*(asyncio.to_thread(add, number) for number in range(4)))
    storage, close = open_storage(database.database_url, database.redis_url)
    try:
        stored = await storage.signing_keys.all()
    finally:
        await close()
    assert sorted(results) == [False, False, False, True]
    [winner] = [number for number, added in enumerate(results) if added]
    assert [key.kid for key in stored] == [f"e{winner}", f"r{winner}"]


async def test_nodes_answering_one_sealed_challenge_together_spend_it_once(database: Backend) -> None:
    """Several storages on one database, as nodes have, each spending the one challenge at the same moment."""
    start = threading.Barrier(4, timeout=30)
    until = NOW + timedelta(days=1)  # Redis expires a mark by the real clock

    def spend() -> bool:
        async def run() -> bool:
            own, close_own = open_storage(database.database_url, database.redis_url)
            try:
                await asyncio.to_thread(start.wait)
                return await own.challenges.spend(b"n" * 32, until)
            finally:
                await close_own()

        return asyncio.run(run())

    results = await asyncio.gather(*(asyncio.to_thread(spend) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]


@pytest.fixture(params=["sqlite", "postgresql"])
async def sql_database(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A database that also keeps the spent challenges (no Redis)."""
    return await _backend(request, tmp_path)


async def test_nodes_recording_sign_ins_that_answer_one_challenge_record_one(sql_database: Backend) -> None:
    """A sign-in marks its challenge in the transaction that records it: of several nodes recording answers to
    one challenge at the same moment, exactly one records its sign-in; the others write nothing at all."""
    storage, close = open_storage(sql_database.database_url)
    assert storage.challenges.spent_with_sign_in
    await storage.users.create_with_credential(user(), credential(sign_count=0))  # no counter: nothing else stops them
    start = threading.Barrier(4, timeout=30)
    spend = Spend(b"j" * 32, NOW + timedelta(days=1))

    def record(node: int) -> bool:
        async def run() -> bool:
            own, close_own = open_storage(sql_database.database_url)
            session = Session(
                token_hash=bytes([node]) * 32, user_id="u1", created_at=NOW, last_seen_at=NOW, expires_at=spend.until
            )
            use = CredentialUse(credential_id=b"c1", sign_count=0, backed_up=False, used_at=NOW)
            event = Event(type="sign_in", outcome="success", created_at=NOW, user_id="u1", detail={"node": node})
            try:
                await asyncio.to_thread(start.wait)
                queued = await own.sign_ins.record(use, session=session, ended_session=None, event=event, spend=spend)
                return queued is not None
            except ChallengeNotFound:
                return False
            finally:
                await close_own()

        return asyncio.run(run())

    try:
        results = await asyncio.gather(*(asyncio.to_thread(record, node) for node in range(4)))
        assert sorted(results) == [False, False, False, True]
        [winner] = [node for node, recorded in enumerate(results) if recorded]
        assert [event.detail for event in await storage.events.list()] == [{"node": winner}]
        for node in range(4):
            assert (await storage.sessions.get(bytes([node]) * 32) is not None) is (node == winner)
        assert await storage.challenges.spend(spend.challenge_id, spend.until) is False
    finally:
        await close()


async def test_a_stale_sign_in_leaves_its_challenge_to_be_spent_on_its_own(sql_database: Backend) -> None:
    storage, close = open_storage(sql_database.database_url)
    try:
        await storage.users.create_with_credential(user(), credential(sign_count=3))
        session = Session(token_hash=b"s" * 32, user_id="u1", created_at=NOW, last_seen_at=NOW, expires_at=NOW)
        stale = CredentialUse(credential_id=b"c1", sign_count=3, backed_up=False, used_at=NOW)
        event = Event(type="sign_in", outcome="success", created_at=NOW, user_id="u1")
        spend = Spend(b"k" * 32, NOW + timedelta(days=1))
        refused = await storage.sign_ins.record(stale, session=session, ended_session=None, event=event, spend=spend)
        assert refused is None
        assert await storage.events.list() == []
        assert await storage.challenges.spend(spend.challenge_id, spend.until) is True  # its refusal spends it
        fresh = dataclasses.replace(stale, sign_count=4)
        with pytest.raises(ChallengeNotFound):
            await storage.sign_ins.record(fresh, session=session, ended_session=None, event=event, spend=spend)
        assert (await storage.credentials.get(b"c1")).sign_count == 3  # type: ignore[union-attr]
        assert await storage.sessions.get(session.token_hash) is None
    finally:
        await close()


async def test_a_sign_up_writes_its_account_passkey_session_and_event_together(storage: Storage) -> None:
    session = Session(token_hash=b"u" * 32, user_id="u1", created_at=NOW, last_seen_at=NOW, expires_at=NOW)
    event = Event(type="passkey.register", outcome="success", created_at=NOW, user_id="u1", credential_id=b"c1")
    await storage.users.create_with_credential(user(), credential(), event=event, session=session)
    assert await storage.sessions.get(session.token_hash) == session
    assert [(e.type, e.user_id) for e in await storage.events.list()] == [("passkey.register", "u1")]
    taken = user(user_id="u2")  # the username is taken: nothing is written
    other = dataclasses.replace(session, token_hash=b"v" * 32, user_id="u2")
    with pytest.raises(UsernameTaken):
        await storage.users.create_with_credential(taken, credential(b"c2", user_id="u2"), event=event, session=other)
    assert await storage.sessions.get(other.token_hash) is None
    assert len(await storage.events.list()) == 1


async def test_a_sign_up_queues_its_webhook_events_with_the_account_and_counts_them(storage: Storage) -> None:
    await storage.webhooks.put_endpoint(endpoint("all", ("*",)))
    await storage.webhooks.put_endpoint(endpoint("keys", ("passkey.*",)))
    session = Session(token_hash=b"u" * 32, user_id="u1", created_at=NOW, last_seen_at=NOW, expires_at=NOW)
    event = Event(type="passkey.register", outcome="success", created_at=NOW, user_id="u1", detail={"a": "Zoë"})
    outbox = [webhook("m1", "user.created"), webhook("m2", "passkey.created")]
    queued = await storage.users.create_with_credential(
        user(), credential(), event=event, session=session, outbox=outbox
    )
    assert queued == 3
    deliveries = sorted((d.endpoint_id, d.message_id, d.type) for d in await storage.webhooks.list_deliveries())
    assert deliveries == [
        ("all", "m1", "user.created"),
        ("all", "m2", "passkey.created"),
        ("keys", "m2", "passkey.created"),
    ]
    assert await storage.credentials.get(b"c1") == credential()
    assert await storage.sessions.get(session.token_hash) == session
    assert [(e.type, e.detail) for e in await storage.events.list()] == [("passkey.register", {"a": "Zoë"})]
    # Refused (the username is taken): nothing of it is written, no delivery either.
    again = [webhook("m3", "user.created")]
    with pytest.raises(UsernameTaken):
        await storage.users.create_with_credential(user(user_id="u2"), credential(b"c2", "u2"), outbox=again)
    assert len(await storage.webhooks.list_deliveries()) == 3
    quiet = await storage.users.create_with_credential(user("Bob", "u3"), credential(b"c3", "u3"))
    assert quiet == 0


async def test_a_sign_up_answering_a_spent_challenge_writes_nothing(sql_database: Backend) -> None:
    storage, close = open_storage(sql_database.database_url)
    try:
        spend = Spend(b"m" * 32, NOW + timedelta(days=1))
        assert await storage.challenges.spend(spend.challenge_id, spend.until)
        session = Session(token_hash=b"u" * 32, user_id="u1", created_at=NOW, last_seen_at=NOW, expires_at=NOW)
        event = Event(type="passkey.register", outcome="success", created_at=NOW, user_id="u1")
        with pytest.raises(ChallengeNotFound):
            await storage.users.create_with_credential(user(), credential(), event=event, session=session, spend=spend)
        assert await storage.users.get("u1") is None
        assert await storage.sessions.get(session.token_hash) is None
        assert await storage.events.list() == []
        fresh = Spend(b"n" * 32, spend.until)
        await storage.users.create_with_credential(user(), credential(), event=event, session=session, spend=fresh)
        assert await storage.users.get("u1") is not None
        assert await storage.challenges.spend(fresh.challenge_id, fresh.until) is False
    finally:
        await close()


def authorization_code(code_hash: bytes = b"a" * 32) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=code_hash,
        client_id="shop",
        user_id="u1",
        redirect_uri="https://shop.example/callback",
        scope="openid email",
        nonce="n-0S6_WzA2Mj",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        sid="public-id-1",
        auth_time=NOW,
        amr=("pop", "swk"),
        acr="phr",
        created_at=NOW,
        expires_at=NOW + timedelta(minutes=1),
    )


async def test_an_authorization_code_is_taken_once_and_its_reuse_revokes_what_it_issued(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    code = authorization_code()
    await storage.authorization_codes.add(code)
    await storage.authorization_codes.add(authorization_code(b"b" * 32))
    assert await storage.authorization_codes.take(b"x" * 32, NOW) is None
    taken = await storage.authorization_codes.take(code.code_hash, NOW)
    assert taken is not None and taken.first and taken.code == dataclasses.replace(code, used_at=NOW)
    await storage.authorization_codes.record_issued(code.code_hash, "jti-1")
    await storage.authorization_codes.record_issued(b"b" * 32, "jti-2")
    assert not await storage.authorization_codes.revoked("jti-1")
    again = await storage.authorization_codes.take(code.code_hash, NOW + timedelta(seconds=5))
    assert again is not None and not again.first
    assert again.code == dataclasses.replace(code, used_at=NOW, access_token_jti="jti-1", revoked=True)
    assert await storage.authorization_codes.revoked("jti-1")
    assert not await storage.authorization_codes.revoked("jti-2")  # another code's token
    assert not await storage.authorization_codes.revoked("jti-3")


async def test_concurrent_exchanges_of_one_code_take_it_once(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.authorization_codes.add(authorization_code())
    taken = await asyncio.gather(*(storage.authorization_codes.take(b"a" * 32, NOW) for _ in range(5)))
    assert sorted(result.first for result in taken if result is not None) == [False, False, False, False, True]


async def test_authorization_codes_are_purged_once_expired(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.authorization_codes.add(authorization_code(b"a" * 32))
    later = dataclasses.replace(authorization_code(b"b" * 32), expires_at=NOW + timedelta(minutes=10))
    await storage.authorization_codes.add(later)
    assert await storage.authorization_codes.purge(NOW) == 0
    assert await storage.authorization_codes.purge(NOW + timedelta(minutes=1)) == 1
    assert await storage.authorization_codes.take(b"a" * 32, NOW) is None
    taken = await storage.authorization_codes.take(b"b" * 32, NOW)
    assert taken is not None and taken.first


async def test_the_clients_of_a_session_are_taken_once(storage: Storage) -> None:
    def entry(token_hash: bytes, client_id: str, at: datetime = NOW) -> SessionClient:
        return SessionClient(
            token_hash=token_hash,
            sid=f"sid-{token_hash[:1].decode()}",
            user_id="u1",
            client_id=client_id,
            recorded_at=at,
        )

    await storage.session_clients.record(entry(b"a" * 32, "shop"))
    await storage.session_clients.record(entry(b"a" * 32, "shop", NOW + timedelta(minutes=1)))  # kept once
    await storage.session_clients.record(entry(b"a" * 32, "blog"))
    await storage.session_clients.record(entry(b"b" * 32, "shop"))
    await storage.session_clients.record(entry(b"c" * 32, "shop", NOW - timedelta(days=40)))
    assert await storage.session_clients.take([]) == []
    taken = await asyncio.gather(*(storage.session_clients.take([b"a" * 32, b"z" * 32]) for _ in range(3)))
    assert sorted(e.client_id for result in taken for e in result) == ["blog", "shop"]
    assert [e for result in taken for e in result if e.client_id == "shop"] == [entry(b"a" * 32, "shop")]
    assert await storage.session_clients.purge(NOW - timedelta(days=30)) == 1
    assert await storage.session_clients.take([b"b" * 32, b"c" * 32]) == [entry(b"b" * 32, "shop")]


def refresh_token(token_hash: bytes = b"r" * 32, family_id: str = "family-1", **changes: Any) -> RefreshToken:
    token = RefreshToken(
        token_hash=token_hash,
        family_id=family_id,
        client_id="shop",
        user_id="u1",
        sid="public-id-1",
        scope="openid offline_access",
        auth_time=NOW,
        amr=("pop", "swk"),
        acr="phr",
        generation=0,
        access_token_jti=f"jti-{token_hash[:1].decode()}",
        created_at=NOW,
        expires_at=NOW + timedelta(days=14),
        family_expires_at=NOW + timedelta(days=30),
    )
    return dataclasses.replace(token, **changes)


async def test_a_refresh_token_rotates_once_and_its_reuse_revokes_the_family(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.refresh_tokens.add(refresh_token())
    await storage.refresh_tokens.add(refresh_token(b"o" * 32, "family-2"))
    later = NOW + timedelta(minutes=1)
    replacement = refresh_token(b"s" * 32, generation=1, created_at=later)
    assert await storage.refresh_tokens.rotate(b"x" * 32, replacement, later) is None
    assert await storage.refresh_tokens.get(b"s" * 32) is None
    rotated = await storage.refresh_tokens.rotate(b"r" * 32, replacement, later)
    assert rotated is not None and rotated.first and rotated.token.used_at == later
    assert await storage.refresh_tokens.get(b"s" * 32) == replacement
    assert (await storage.refresh_tokens.by_access_token("jti-s")) == replacement
    reused = await storage.refresh_tokens.rotate(b"r" * 32, refresh_token(b"t" * 32, generation=1), later)
    assert reused is not None and not reused.first and reused.token.revoked
    assert await storage.refresh_tokens.get(b"t" * 32) is None  # nothing issued
    assert (await storage.refresh_tokens.get(b"s" * 32)) == dataclasses.replace(replacement, revoked=True)
    other = await storage.refresh_tokens.get(b"o" * 32)
    assert other is not None and not other.revoked  # another family
    # A token of a revoked family rotates no more.
    again = await storage.refresh_tokens.rotate(b"s" * 32, refresh_token(b"u" * 32), later)
    assert again is not None and not again.first
    assert await storage.refresh_tokens.get(b"u" * 32) is None


async def test_concurrent_uses_of_one_refresh_token_rotate_it_once_and_revoke_the_family(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.refresh_tokens.add(refresh_token())
    replacements = [refresh_token(bytes([65 + n]) * 32, generation=1) for n in range(5)]
    taken = await asyncio.gather(*(storage.refresh_tokens.rotate(b"r" * 32, r, NOW) for r in replacements))
    assert sorted(t.first for t in taken if t is not None) == [False, False, False, False, True]
    issued = [await storage.refresh_tokens.get(r.token_hash) for r in replacements]
    assert [token.revoked for token in issued if token is not None] == [True]  # one issued, and revoked


async def test_a_users_refresh_tokens_are_revoked_for_one_client_or_all(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.users.create_with_credential(user("Bob", "u2"), credential(b"c2", "u2"))
    await storage.refresh_tokens.add(refresh_token(b"a" * 32, "shop-family"))
    await storage.refresh_tokens.add(refresh_token(b"b" * 32, "blog-family", client_id="blog"))
    await storage.refresh_tokens.add(refresh_token(b"c" * 32, "bobs-family", user_id="u2"))
    assert await storage.refresh_tokens.revoke_for_user("u1", client_id="blog") == 1
    assert await storage.refresh_tokens.revoke_for_user("u1", client_id="blog") == 0  # revoked already
    revoked = {h: t.revoked for h in (b"a", b"b", b"c") if (t := await storage.refresh_tokens.get(h * 32))}
    assert revoked == {b"a": False, b"b": True, b"c": False}
    assert await storage.refresh_tokens.revoke_for_user("u1") == 1
    token = await storage.refresh_tokens.get(b"a" * 32)
    assert token is not None and token.revoked
    bobs = await storage.refresh_tokens.get(b"c" * 32)
    assert bobs is not None and not bobs.revoked


async def test_revoked_access_tokens_are_kept_until_they_expire(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.refresh_tokens.revoke_access_token("jti-1", NOW + timedelta(minutes=5))
    await storage.refresh_tokens.revoke_access_token("jti-1", NOW + timedelta(minutes=5))  # twice is fine
    await storage.refresh_tokens.add(refresh_token(family_expires_at=NOW + timedelta(minutes=10)))
    assert await storage.refresh_tokens.access_token_revoked("jti-1")
    assert not await storage.refresh_tokens.access_token_revoked("jti-2")
    assert await storage.refresh_tokens.purge(NOW) == 0
    assert await storage.refresh_tokens.purge(NOW + timedelta(minutes=5)) == 1
    assert not await storage.refresh_tokens.access_token_revoked("jti-1")
    assert await storage.refresh_tokens.purge(NOW + timedelta(minutes=10)) == 1
    assert await storage.refresh_tokens.get(b"r" * 32) is None


async def test_a_consent_widens_with_each_grant_and_is_withdrawn(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.users.create_with_credential(user("Bob", "u2"), credential(b"c2", "u2"))
    assert await storage.consents.get("u1", "partner") is None
    first = await storage.consents.grant("u1", "partner", ["openid", "profile"], NOW)
    assert first == Consent(
        user_id="u1", client_id="partner", scopes=frozenset({"openid", "profile"}), granted_at=NOW, updated_at=NOW
    )
    later = NOW + timedelta(minutes=1)
    widened = await storage.consents.grant("u1", "partner", ["openid", "offline_access"], later)
    assert widened.scopes == {"openid", "profile", "offline_access"}  # a grant never narrows
    assert (widened.granted_at, widened.updated_at) == (NOW, later)
    assert await storage.consents.get("u1", "partner") == widened
    await storage.consents.grant("u1", "crm", ["openid"], later)
    await storage.consents.grant("u2", "partner", ["openid"], NOW)
    assert [c.client_id for c in await storage.consents.list_for_user("u1")] == ["partner", "crm"]
    assert await storage.consents.withdraw("u1", "partner")
    assert not await storage.consents.withdraw("u1", "partner")
    assert await storage.consents.get("u1", "partner") is None
    assert [c.client_id for c in await storage.consents.list_for_user("u1")] == ["crm"]
    assert (await storage.consents.get("u2", "partner")) is not None  # another person's
    assert await storage.consents.forget_client("partner") == 1  # the client was removed
    assert await storage.consents.get("u2", "partner") is None
    assert [c.client_id for c in await storage.consents.list_for_user("u1")] == ["crm"]


async def test_concurrent_grants_keep_every_scope(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    scopes = ["openid", "profile", "email", "offline_access"]
    await asyncio.gather(*(storage.consents.grant("u1", "partner", [scope], NOW) for scope in scopes))
    granted = await storage.consents.get("u1", "partner")
    assert granted is not None and granted.scopes == set(scopes)


async def test_refresh_tokens_of_one_client_are_revoked_for_one_user(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.users.create_with_credential(user("Bob", "u2"), credential(b"c2", "u2"))
    await storage.refresh_tokens.add(refresh_token())
    await storage.refresh_tokens.add(refresh_token(b"s" * 32, "family-2"))
    await storage.refresh_tokens.add(refresh_token(b"o" * 32, "family-3", client_id="other"))
    await storage.refresh_tokens.add(refresh_token(b"b" * 32, "family-4", user_id="u2"))
    assert await storage.refresh_tokens.revoke_for_user("u1", client_id="shop") == 2
    assert await storage.refresh_tokens.revoke_for_user("u1", client_id="shop") == 0
    revoked = {t: (await storage.refresh_tokens.get(t * 32)) for t in (b"r", b"s", b"o", b"b")}
    assert {t: token.revoked for t, token in revoked.items() if token} == {
        b"r": True,
        b"s": True,
        b"o": False,
        b"b": False,
    }


async def test_deleting_a_user_deletes_their_consents(database: Backend) -> None:
    storage, close = open_storage(database.database_url, database.redis_url)
    try:
        await storage.users.create_with_credential(user(), credential())
        await storage.consents.grant("u1", "partner", ["openid"], NOW)
        engine = sa.create_engine(sync_url(database.database_url))
        with engine.begin() as connection:
            if engine.dialect.name == "sqlite":
                connection.execute(sa.text("PRAGMA foreign_keys=ON"))
            connection.execute(sa.text("DELETE FROM users WHERE id = 'u1'"))
        engine.dispose()
        assert await storage.consents.get("u1", "partner") is None
    finally:
        await close()


async def test_apps_keep_their_users_and_passkeys_apart(storage: Storage) -> None:
    from passgate.core.apps import App, AppKey
    from passgate.store.base import AppUser

    for app_id in ("a1", "a2"):
        await storage.apps.add(
            App(
                app_id=app_id,
                name=app_id,
                origins=("https://shop.example",),
                rp_id="shop.example",
                policy="",
                created_at=NOW,
            )
        )
    with pytest.raises(ClientExists):
        await storage.apps.add(
            App(app_id="a1", name="again", origins=(), rp_id="shop.example", policy="", created_at=NOW)
        )
    assert [app.app_id for app in await storage.apps.list_apps()] == ["a1", "a2"]
    assert (await storage.apps.get("a1")) is not None and (await storage.apps.get("a1")).origins == (  # type: ignore[union-attr]
        "https://shop.example",
    )

    key = AppKey(key_id="k1", app_id="a1", key_hash=b"h" * 32, created_at=NOW)
    await storage.apps.add_key(key)
    assert await storage.apps.key_by_hash(b"h" * 32) == key
    assert not await storage.apps.revoke_key("a2", "k1", NOW)  # another app's key
    assert await storage.apps.revoke_key("a1", "k1", NOW)
    assert not await storage.apps.revoke_key("a1", "k1", NOW)  # once
    assert (await storage.apps.key_by_hash(b"h" * 32)).revoked_at == NOW  # type: ignore[union-attr]

    first = AppUser(
        app_id="a1", user_id="u", user_handle=b"\x01" * 32, username="ada", display_name="Ada", created_at=NOW
    )
    assert await storage.apps.put_user(first) == first
    renamed = await storage.apps.put_user(dataclasses.replace(first, user_handle=b"\x02" * 32, username="ada2"))
    assert renamed.user_handle == first.user_handle and renamed.username == "ada2"
    assert await storage.apps.get_user("a2", "u") is None

    await storage.apps.add_credential("a1", credential(b"ac1", user_id="u", sign_count=5))
    with pytest.raises(CredentialExists):
        await storage.apps.add_credential("a2", credential(b"ac1", user_id="u"))
    assert await storage.apps.get_credential("a2", b"ac1") is None
    assert [c.credential_id for c in await storage.apps.list_credentials("a1", "u")] == [b"ac1"]
    assert await storage.apps.list_credentials("a2", "u") == []
    assert not await storage.apps.rename_credential("a2", b"ac1", "x")
    assert await storage.apps.rename_credential("a1", b"ac1", "Laptop")
    assert not await storage.apps.record_use("a1", b"ac1", sign_count=5, backed_up=True, used_at=NOW)
    assert await storage.apps.record_use("a1", b"ac1", sign_count=6, backed_up=True, used_at=NOW)
    stored = await storage.apps.get_credential("a1", b"ac1")
    assert stored is not None and (stored.sign_count, stored.nickname, stored.last_used_at) == (6, "Laptop", NOW)
    assert not await storage.apps.remove_credential("a2", b"ac1")

    assert not await storage.apps.remove_user("a2", "u")
    assert await storage.apps.remove_user("a1", "u")
    assert await storage.apps.get_credential("a1", b"ac1") is None
    await storage.apps.put_user(first)
    await storage.apps.add_credential("a1", credential(b"ac2", user_id="u"))
    assert await storage.apps.remove("a1")
    assert not await storage.apps.remove("a1")
    assert await storage.apps.get_user("a1", "u") is None and await storage.apps.key_by_hash(b"h" * 32) is None
    assert await storage.apps.get_credential("a1", b"ac2") is None


async def test_putting_an_app_again_keeps_its_keys_and_users(storage: Storage) -> None:
    from passgate.core.apps import App, AppKey
    from passgate.store.base import AppUser

    app = App(app_id="f1", name="File", origins=("https://a.example",), rp_id="a.example", policy="", created_at=NOW)
    await storage.apps.put(app)
    await storage.apps.add_key(AppKey(key_id="k", app_id="f1", key_hash=b"f" * 32, created_at=NOW))
    user = AppUser(app_id="f1", user_id="u", user_handle=b"\x03" * 32, username="u", display_name="u", created_at=NOW)
    await storage.apps.put_user(user)
    changed = dataclasses.replace(
        app, name="Renamed", origins=("https://b.a.example",), policy="enterprise", created_at=NOW + timedelta(days=1)
    )
    await storage.apps.put(changed)
    stored = await storage.apps.get("f1")
    assert stored is not None
    assert (stored.name, stored.origins, stored.policy, stored.created_at) == (
        "Renamed",
        ("https://b.a.example",),
        "enterprise",
        NOW,
    )
    assert await storage.apps.key_by_hash(b"f" * 32) is not None
    assert await storage.apps.get_user("f1", "u") == user


def endpoint(endpoint_id: str, events: tuple[str, ...], *, enabled: bool = True) -> Any:
    from passgate.store.base import WebhookEndpoint

    url = f"https://{endpoint_id}.example/"
    return WebhookEndpoint(
        id=endpoint_id, url=url, events=events, secrets=b"\x01sealed", created_at=NOW, enabled=enabled
    )


def webhook(message_id: str, type_: str) -> Any:
    from passgate.store.base import WebhookEvent

    return WebhookEvent(message_id=message_id, type=type_, body=f'{{"type":"{type_}"}}', created_at=NOW)


async def test_webhook_events_are_queued_for_the_endpoints_subscribed(storage: Storage) -> None:
    await storage.webhooks.put_endpoint(endpoint("all", ("*",)))
    await storage.webhooks.put_endpoint(endpoint("keys", ("passkey.*", "user.deleted")))
    await storage.webhooks.put_endpoint(endpoint("off", ("*",), enabled=False))
    await storage.users.create_with_credential(
        user(), credential(), outbox=[webhook("m1", "user.created"), webhook("m2", "passkey.created")]
    )
    assert await storage.webhooks.enqueue([webhook("m3", "user.deleted"), webhook("m4", "signin.failed")]) == 3
    assert await storage.webhooks.enqueue([webhook("m3", "user.deleted")]) == 0  # queued already
    queued = await storage.webhooks.list_deliveries()
    assert sorted((d.endpoint_id, d.message_id) for d in queued) == [
        ("all", "m1"),
        ("all", "m2"),
        ("all", "m3"),
        ("all", "m4"),
        ("keys", "m2"),
        ("keys", "m3"),
    ]
    assert all(d.status == "queued" and d.attempts == 0 and d.next_attempt_at == NOW for d in queued)
    assert [d.message_id for d in await storage.webhooks.list_deliveries(endpoint_id="keys")] == ["m3", "m2"]
    assert await storage.webhooks.remove_endpoint("keys")
    assert await storage.webhooks.list_deliveries(endpoint_id="keys") == []
    assert not await storage.webhooks.remove_endpoint("keys")
    stored = await storage.webhooks.get_endpoint("off")
    assert stored is not None and stored.events == ("*",) and not stored.enabled and stored.secrets == b"\x01sealed"


async def test_webhook_deliveries_are_leased_retried_failed_and_redelivered(storage: Storage) -> None:
    await storage.webhooks.put_endpoint(endpoint("e", ("*",)))
    await storage.webhooks.enqueue([webhook("m1", "user.created"), webhook("m2", "user.deleted")])
    first, second = await storage.webhooks.claim(worker="w1", now=NOW, lease=LEASE, limit=10)
    assert (first.attempts, first.claimed_by) == (1, "w1")
    assert await storage.webhooks.claim(worker="w2", now=NOW, lease=LEASE, limit=10) == []
    assert not await storage.webhooks.retry(first.id, worker="w2", at=NOW, error="not mine")
    assert await storage.webhooks.retry(first.id, worker="w1", at=NOW + LEASE, error="HTTP 500", status=500)
    assert await storage.webhooks.delivered(second.id, worker="w1", at=NOW, status=204)
    assert not await storage.webhooks.delivered(second.id, worker="w1", at=NOW, status=204)  # once
    assert await storage.webhooks.claim(worker="w2", now=NOW, lease=LEASE, limit=10) == []  # the retry is not due
    [again] = await storage.webhooks.claim(worker="w2", now=NOW + LEASE, lease=LEASE, limit=10)
    assert (again.id, again.attempts, again.last_error, again.last_status) == (first.id, 2, "HTTP 500", 500)
    assert await storage.webhooks.fail(again.id, worker="w2", at=NOW, error="given up", status=500)
    failed = await storage.webhooks.get_delivery(first.id)
    assert failed is not None and (failed.status, failed.finished_at, failed.claimed_by) == ("failed", NOW, None)
    assert await storage.webhooks.set_enabled("e", False, reason="410 Gone", at=NOW)
    assert await storage.webhooks.redeliver(first.id, at=NOW)
    assert await storage.webhooks.claim(worker="w3", now=NOW, lease=LEASE, limit=10) == []  # the endpoint is off
    assert await storage.webhooks.set_enabled("e", True)
    [redelivered] = await storage.webhooks.claim(worker="w3", now=NOW, lease=LEASE, limit=10)
    assert (redelivered.message_id, redelivered.attempts, redelivered.status) == ("m1", 1, "queued")
    assert not await storage.webhooks.redeliver(999, at=NOW)
    assert await storage.webhooks.purge(NOW + timedelta(seconds=1)) == 1  # the delivered one; the queued stays
    assert [d.id for d in await storage.webhooks.list_deliveries()] == [first.id]


async def test_concurrent_claims_take_each_webhook_delivery_once(storage: Storage) -> None:
    await storage.webhooks.put_endpoint(endpoint("e", ("*",)))
    await storage.webhooks.enqueue([webhook(f"m{number:02}", "user.created") for number in range(12)])
    batches = await asyncio.gather(
        *(storage.webhooks.claim(worker=f"w{n}", now=NOW, lease=LEASE, limit=5) for n in range(4))
    )
    ids = [d.message_id for batch in batches for d in batch]
    assert sorted(ids) == [f"m{number:02}" for number in range(12)]


# Administration: admin keys and the account admin store.


def admin_key(name: str = "support", key_hash: bytes = b"k" * 32, **changes: Any) -> AdminKey:
    key = AdminKey(name=name, key_hash=key_hash, scopes=("users:read", "events:read"), created_at=NOW)
    return dataclasses.replace(key, **changes)


def admin_event(type_: str, user_id: str | None = "u1", **detail: Any) -> Event:
    return Event(type=type_, outcome="success", created_at=NOW, user_id=user_id, detail={"admin_key": "ops", **detail})


async def test_admin_keys_are_added_found_by_hash_listed_and_revoked(storage: Storage) -> None:
    await storage.admin_keys.add(admin_key())
    assert await storage.admin_keys.by_hash(b"k" * 32) == admin_key()
    assert await storage.admin_keys.by_hash(b"x" * 32) is None
    with pytest.raises(AdminKeyExists):
        await storage.admin_keys.add(admin_key(key_hash=b"j" * 32))
    assert await storage.admin_keys.revoke("support", NOW)
    assert not await storage.admin_keys.revoke("support", NOW)
    assert (await storage.admin_keys.by_hash(b"k" * 32)) == admin_key(revoked_at=NOW)
    await storage.admin_keys.add(admin_key(key_hash=b"j" * 32, created_at=NOW + timedelta(seconds=1)))
    assert [k.key_hash for k in await storage.admin_keys.list()] == [b"k" * 32, b"j" * 32]


async def test_users_are_listed_in_pages_and_searched(storage: Storage) -> None:
    for number in range(5):
        account = dataclasses.replace(
            user(f"user{number}", f"u{number}"), email=f"Person{number}@Example.com", external_id=f"ext-{number}"
        )
        await storage.users.create_imported(account, [], None)
    first = await storage.admin.list_users(search=None, after=None, limit=2)
    assert [u.id for u in first] == ["u0", "u1"]
    rest = await storage.admin.list_users(search=None, after="u1", limit=10)
    assert [u.id for u in rest] == ["u2", "u3", "u4"]
    assert [u.id for u in await storage.admin.list_users(search="USER3", after=None, limit=10)] == ["u3"]
    assert [u.id for u in await storage.admin.list_users(search="person4@example", after=None, limit=10)] == ["u4"]
    assert [u.id for u in await storage.admin.list_users(search="ext-2", after=None, limit=10)] == ["u2"]
    assert await storage.admin.list_users(search="%", after=None, limit=10) == []


async def test_disabling_ends_every_session_and_refresh_token_with_its_event(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.users.create_with_credential(user("Bob", "u2"), credential(b"c2", "u2"))
    await storage.sessions.create(session(b"1", b"c1"))
    await storage.sessions.create(session(b"2", None))
    await storage.sessions.create(session(b"3", b"c2", user_id="u2"))
    await storage.refresh_tokens.add(refresh_token())
    assert {s.token_hash for s in await storage.admin.sessions_for_user("u1")} == {b"1" * 32, b"2" * 32}
    ended = await storage.admin.disable("u1", NOW, event=admin_event("admin.user.disable"))
    assert ended is not None and set(ended) == {b"1" * 32, b"2" * 32}
    assert (await storage.users.get("u1")) == dataclasses.replace(user(), disabled_at=NOW)
    assert await storage.sessions.get(b"1" * 32) is None and await storage.sessions.get(b"2" * 32) is None
    assert await storage.sessions.get(b"3" * 32) is not None
    token = await storage.refresh_tokens.get(b"r" * 32)
    assert token is not None and token.revoked
    later = NOW + timedelta(hours=1)
    assert await storage.admin.disable("u1", later, event=admin_event("admin.user.disable")) == ()
    assert (await storage.users.get("u1")) == dataclasses.replace(user(), disabled_at=NOW)  # the first time stays
    found = await storage.credentials.get_with_owner(b"c1")
    assert found is not None and found[1].disabled_at == NOW
    assert await storage.admin.enable("u1", event=admin_event("admin.user.enable"))
    assert await storage.users.get("u1") == user()
    assert await storage.admin.disable("nobody", NOW, event=admin_event("admin.user.disable")) is None
    assert not await storage.admin.enable("nobody", event=admin_event("admin.user.enable"))
    types = [e.type for e in await storage.events.list(user_id="u1")]
    assert types == ["admin.user.enable", "admin.user.disable", "admin.user.disable"]


async def test_an_open_session_ended_by_disabling_is_not_served_from_a_cache(storage: Storage) -> None:
    await storage.users.create_with_credential(user(), credential())
    await storage.sessions.create(session(b"1", b"c1"))
    assert await storage.sessions.get(b"1" * 32) is not None  # read once: cached where there is a cache
    await storage.admin.disable("u1", NOW, event=admin_event("admin.user.disable"))
    assert await storage.sessions.get(b"1" * 32) is None


async def test_events_are_paged_by_id_and_filtered(storage: Storage) -> None:
    for number in range(6):
        await storage.events.record(
            Event(
                type="sign_in" if number % 2 else "passkey.register",
                outcome="success" if number < 4 else "failure",
                created_at=NOW + timedelta(minutes=number),
                user_id="u1" if number < 3 else "u2",
            )
        )
    everything = await storage.admin.events(EventQuery(), limit=10)
    ids = [e.id for e in everything]
    assert len(ids) == 6 and ids == sorted(ids, reverse=True)
    page = await storage.admin.events(EventQuery(), limit=2)
    after = await storage.admin.events(EventQuery(before_id=page[-1].id), limit=10)
    assert [e.id for e in page + after] == ids
    assert [e.created_at for e in await storage.admin.events(EventQuery(user_id="u2", type="sign_in"), limit=10)] == [
        NOW + timedelta(minutes=5),
        NOW + timedelta(minutes=3),
    ]
    assert len(await storage.admin.events(EventQuery(outcome="failure"), limit=10)) == 2
    window = EventQuery(since=NOW + timedelta(minutes=1), until=NOW + timedelta(minutes=3))
    assert [e.created_at for e in await storage.admin.events(window, limit=10)] == [
        NOW + timedelta(minutes=2),
        NOW + timedelta(minutes=1),
    ]


async def test_deleting_a_user_erases_them_and_pseudonymises_their_events(storage: Storage) -> None:
    alice = dataclasses.replace(user(), email="alice@example.com", email_verified_at=NOW, external_id="legacy-9")
    await storage.users.create_imported(
        alice, [credential()], StoredPassword(user_id="u1", hash="h", created_at=NOW, updated_at=NOW)
    )
    await storage.users.create_with_credential(user("Bob", "u2"), credential(b"c2", "u2"))
    await storage.sessions.create(session(b"1", b"c1"))
    await storage.sessions.create(session(b"3", b"c2", user_id="u2"))
    await storage.backup_codes.replace(
        "u1", [BackupCode(user_id="u1", number=1, code_hash=b"h", salt=b"s", created_at=NOW)]
    )
    await storage.email_tokens.put(
        EmailToken(
            token_hash=b"e" * 32,
            purpose="sign_in",
            user_id="u1",
            email="alice@example.com",
            browser=None,
            created_at=NOW,
            expires_at=NOW + timedelta(minutes=5),
        )
    )
    await storage.refresh_tokens.add(refresh_token())
    await storage.consents.grant("u1", "partner", ["openid"], NOW)
    await storage.mail.enqueue(dataclasses.replace(mail("m1"), recipient="Alice@Example.com"))
    await storage.mail.enqueue(dataclasses.replace(mail("m2"), recipient="bob@example.com"))
    await storage.events.record(
        Event(type="user.imported", outcome="success", created_at=NOW, user_id="u1", detail={"external_id": "legacy-9"})
    )
    await storage.events.record(
        Event(type="sign_in", outcome="success", created_at=NOW, user_id="u1", detail={"who": "Alice", "n": 1})
    )
    ended = await storage.admin.delete_user("u1", pseudonym="anon_1", event=admin_event("admin.user.delete", "anon_1"))
    assert ended == (b"1" * 32,)
    assert await storage.users.get("u1") is None
    assert await storage.users.by_username("alice") is None
    assert await storage.users.by_email("alice@example.com") is None
    assert await storage.users.by_external_id("legacy-9") is None
    assert await storage.credentials.get(b"c1") is None
    assert await storage.passwords.get("u1") is None
    assert await storage.sessions.get(b"1" * 32) is None
    assert await storage.backup_codes.unused("u1") == []
    assert await storage.email_tokens.get(b"e" * 32) is None
    assert await storage.refresh_tokens.get(b"r" * 32) is None
    assert await storage.consents.get("u1", "partner") is None
    assert [m.id for m in await storage.mail.list()] == ["m2"]
    assert await storage.events.list(user_id="u1") == []
    kept = await storage.events.list(user_id="anon_1")
    assert [(e.type, e.detail) for e in kept] == [
        ("admin.user.delete", {"admin_key": "ops"}),
        ("sign_in", {"n": 1}),
        ("user.imported", {}),
    ]
    assert await storage.users.get("u2") is not None and await storage.sessions.get(b"3" * 32) is not None
    assert await storage.admin.delete_user("u1", pseudonym="anon_1", event=admin_event("admin.user.delete")) is None
    # The username and address are free again.
    await storage.users.create_with_credential(
        dataclasses.replace(user(), id="u9", user_handle=b"9" * 32), credential(b"c9", "u9")
    )
