"""The Redis session cache beside the database: an ended session is never served again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from passgate.store.base import Session, SessionStore
from passgate.store.factory import open_storage
from passgate.store.migrate import upgrade
from passgate.store.redis import CachedCredentials, CachedSessions, connect
from tests.services import RedisServer
from tests.store.test_contract import NOW, credential, flush, session, user


class HeldLookUps:
    """The database's sessions, with look-ups that wait, once they have read, until `release` is set."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.read = asyncio.Event()
        self.release = asyncio.Event()

    async def get(self, token_hash: bytes) -> Session | None:
        found = await self.inner.get(token_hash)
        self.read.set()
        await self.release.wait()
        return found

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture
async def database(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path}/cache.db"
    upgrade(url)
    await flush(redis_server.url)
    yield url, redis_server.url


async def test_a_look_up_that_read_a_session_before_it_ended_does_not_cache_it(database: tuple[str, str]) -> None:
    url, redis_url = database
    storage, close = open_storage(url)
    client = connect(redis_url)
    try:
        held = HeldLookUps(storage.sessions)
        sessions = CachedSessions(held, client)  # type: ignore[arg-type]
        credentials = CachedCredentials(storage.credentials, sessions)
        await storage.users.create_with_credential(user(), credential())
        await storage.credentials.add(credential(b"c2"))
        phone = session(b"p", b"c1")
        await sessions.create(phone)
        look_up = asyncio.create_task(sessions.get(phone.token_hash))
        await held.read.wait()  # it has read the session from the database, not yet written the cache
        removal = await credentials.remove(b"c1", "u1")
        assert removal.ended_sessions == (phone.token_hash,)
        held.release.set()
        assert await look_up == phone  # it began before the end
        assert await sessions.get(phone.token_hash) is None
        assert await client.get(b"passgate:session:" + phone.token_hash.hex().encode()) == b"ended"
    finally:
        await client.aclose()
        await close()


async def test_ending_every_session_of_a_user_leaves_the_cache_empty_of_them(database: tuple[str, str]) -> None:
    url, redis_url = database
    storage, close = open_storage(url, redis_url)
    try:
        await storage.users.create_with_credential(user(), credential())
        kept, ended = session(b"k", b"c1"), session(b"e", b"c1")
        for each in (kept, ended):
            await storage.sessions.create(each)
            assert await storage.sessions.get(each.token_hash) == each
        assert await storage.sessions.delete_for_user("u1", keep=kept.token_hash) == (ended.token_hash,)
        assert await storage.sessions.get(ended.token_hash) is None
        assert await storage.sessions.get(kept.token_hash) == kept
        touched_at: datetime = NOW + timedelta(minutes=2)
        await storage.sessions.touch(kept.token_hash, touched_at)
        fresh = await storage.sessions.get(kept.token_hash)
        assert fresh is not None and fresh.last_seen_at == touched_at  # a live session's entry is refreshed
    finally:
        await close()
