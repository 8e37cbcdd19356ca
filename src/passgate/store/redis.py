"""Redis adapters: challenges (atomic single-use take with GETDEL) and a read-through session cache.

Redis is optional: without it the database holds everything. With it, challenges live only in Redis
(shared by every node), and session look-ups are served from Redis with the database as the truth.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from passgate.core.errors import StorageUnavailable
from passgate.store.base import (
    AccountAdminStore,
    Credential,
    CredentialStore,
    CredentialUse,
    Event,
    EventQuery,
    OutboxOfEnded,
    Removal,
    Session,
    SessionStore,
    SignInStore,
    Spend,
    User,
    WebhookEvent,
)

log = logging.getLogger("passgate")

SESSION_CACHE_SECONDS = 30
# Left in an ended session's cache entry: a look-up that read the session from the database just before
# it ended cannot put it back (entries are written only where no key exists).
ENDED = b"ended"


def connect(url: str) -> aioredis.Redis:
    # Short timeouts: when Redis is away, requests fail fast (503) instead of hanging.
    return aioredis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0, health_check_interval=10)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


class CachedSessions:
    """Sessions in the database, looked up through a short-lived Redis cache.

    If Redis is away, look-ups fall back to the database; entries live at most SESSION_CACHE_SECONDS, so
    a session ended while Redis was away cannot outlive that. An ended session's entry becomes a
    tombstone (ENDED) for as long as any entry lives.
    """

    def __init__(self, inner: SessionStore, client: aioredis.Redis, prefix: str = "passgate:session:") -> None:
        self._inner = inner
        self._redis = client
        self._prefix = prefix

    def _key(self, token_hash: bytes) -> str:
        return self._prefix + token_hash.hex()

    async def create(self, session: Session) -> None:
        await self._inner.create(session)

    async def get(self, token_hash: bytes) -> Session | None:
        try:
            cached = await self._redis.get(self._key(token_hash))
        except RedisError:
            log.warning("session cache unavailable; reading the database")
            return await self._inner.get(token_hash)
        if cached == ENDED:
            return None
        if cached is not None:
            return _session(token_hash, json.loads(cached))
        session = await self._inner.get(token_hash)
        if session is not None:
            await self._cache(session)
        return session

    async def _cache(self, session: Session) -> None:
        # The user's set of cached keys lets "end all my sessions" drop them from the cache too.
        members = self._prefix + "user:" + session.user_id
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(self._key(session.token_hash), json.dumps(_fields(session)), ex=SESSION_CACHE_SECONDS, nx=True)
                pipe.sadd(members, session.token_hash.hex())
                pipe.expire(members, SESSION_CACHE_SECONDS)
                await pipe.execute()
        except RedisError:
            log.warning("session cache unavailable for set")

    async def by_sid(self, sid: str) -> Session | None:
        return await self._inner.by_sid(sid)

    async def mark_authenticated(
        self, token_hash: bytes, at: datetime, *, credential_id: bytes, user_verified: bool
    ) -> None:
        await self._inner.mark_authenticated(token_hash, at, credential_id=credential_id, user_verified=user_verified)
        await self._quietly("delete", self._key(token_hash))

    async def delete_for_user(
        self, user_id: str, *, keep: bytes | None = None, outbox: OutboxOfEnded | None = None
    ) -> tuple[bytes, ...]:
        ended = await self._inner.delete_for_user(user_id, keep=keep, outbox=outbox)
        members = self._prefix + "user:" + user_id
        try:
            cached = await self._redis.smembers(members)
            keys = [self._prefix + (m.decode() if isinstance(m, bytes) else m) for m in cached]
            keep_key = self._key(keep) if keep is not None else None
            doomed = [key for key in keys if key != keep_key]
            if doomed:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key in doomed:
                        pipe.set(key, ENDED, ex=SESSION_CACHE_SECONDS)
                    await pipe.execute()
        except RedisError:
            log.warning("session cache unavailable for delete_for_user")
        return ended

    async def touch(self, token_hash: bytes, at: datetime) -> None:
        await self._inner.touch(token_hash, at)
        await self._quietly("delete", self._key(token_hash))

    async def delete(self, token_hash: bytes, *, outbox: Sequence[WebhookEvent] = ()) -> bool:
        deleted = await self._inner.delete(token_hash, outbox=outbox)
        await self.forget(token_hash)
        return deleted

    async def purge_expired(self, now: datetime, idle: timedelta) -> int:
        return await self._inner.purge_expired(now, idle)

    async def count_active(self, now: datetime, idle: timedelta) -> int:
        return await self._inner.count_active(now, idle)

    async def forget(self, *token_hashes: bytes) -> None:
        """Sessions ended in the database: their cache entries become tombstones."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for token_hash in token_hashes:
                    pipe.set(self._key(token_hash), ENDED, ex=SESSION_CACHE_SECONDS)
                await pipe.execute()
        except RedisError:
            log.warning("session cache unavailable for forget")

    async def _quietly(self, command: str, *args: Any, **kwargs: Any) -> None:
        try:
            await getattr(self._redis, command)(*args, **kwargs)
        except RedisError:
            log.warning("session cache unavailable for %s", command)


def _fields(session: Session) -> dict[str, Any]:
    return {
        "user_id": session.user_id,
        "created_at": _iso(session.created_at),
        "last_seen_at": _iso(session.last_seen_at),
        "expires_at": _iso(session.expires_at),
        "authenticated_at": _iso(session.authenticated_at) if session.authenticated_at else None,
        "kind": session.kind,
        "credential_id": session.credential_id.hex() if session.credential_id is not None else None,
        "user_verified": session.user_verified,
        "sid": session.sid,
    }


def _session(token_hash: bytes, fields: dict[str, Any]) -> Session:
    return Session(
        token_hash=token_hash,
        user_id=fields["user_id"],
        created_at=_moment(fields["created_at"]),
        last_seen_at=_moment(fields["last_seen_at"]),
        expires_at=_moment(fields["expires_at"]),
        authenticated_at=_moment(fields["authenticated_at"]) if fields["authenticated_at"] else None,
        kind=fields["kind"],
        credential_id=bytes.fromhex(fields["credential_id"]) if fields.get("credential_id") else None,
        user_verified=bool(fields.get("user_verified", False)),
        sid=fields.get("sid"),
    )


class CachedSignIns:
    """Sign-ins recorded in the database; the session a sign-in replaces is dropped from the cache."""

    def __init__(self, inner: SignInStore, sessions: CachedSessions) -> None:
        self._inner = inner
        self._sessions = sessions

    async def record(
        self,
        use: CredentialUse,
        *,
        session: Session,
        ended_session: bytes | None,
        event: Event,
        outbox: Sequence[WebhookEvent] = (),
        spend: Spend | None = None,
    ) -> int | None:
        recorded = await self._inner.record(
            use, session=session, ended_session=ended_session, event=event, outbox=outbox, spend=spend
        )
        if recorded is not None and ended_session is not None:
            await self._sessions.forget(ended_session)
        return recorded


class CachedCredentials:
    """Passkeys in the database; the sessions a removal ends are dropped from the session cache."""

    def __init__(self, inner: CredentialStore, sessions: CachedSessions) -> None:
        self._inner = inner
        self._sessions = sessions

    async def get(self, credential_id: bytes) -> Credential | None:
        return await self._inner.get(credential_id)

    async def list_for_user(self, user_id: str) -> list[Credential]:
        return await self._inner.list_for_user(user_id)

    async def get_with_owner(self, credential_id: bytes) -> tuple[Credential, User] | None:
        return await self._inner.get_with_owner(credential_id)

    async def add(self, credential: Credential, *, outbox: Sequence[WebhookEvent] = ()) -> None:
        await self._inner.add(credential, outbox=outbox)

    async def rename(
        self, credential_id: bytes, user_id: str, nickname: str | None, *, outbox: Sequence[WebhookEvent] = ()
    ) -> bool:
        return await self._inner.rename(credential_id, user_id, nickname, outbox=outbox)

    async def remove(
        self,
        credential_id: bytes,
        user_id: str,
        *,
        keep_session: bytes | None = None,
        outbox: OutboxOfEnded | None = None,
    ) -> Removal:
        removal = await self._inner.remove(credential_id, user_id, keep_session=keep_session, outbox=outbox)
        if removal.ended_sessions:
            await self._sessions.forget(*removal.ended_sessions)
        return removal

    async def record_use(self, credential_id: bytes, *, sign_count: int, backed_up: bool, used_at: datetime) -> bool:
        return await self._inner.record_use(credential_id, sign_count=sign_count, backed_up=backed_up, used_at=used_at)


class CachedAdmin:
    """An administrator's changes to accounts in the database; the sessions a disable or delete ends become
    tombstones in the session cache at once."""

    def __init__(self, inner: AccountAdminStore, sessions: CachedSessions) -> None:
        self._inner = inner
        self._sessions = sessions

    async def list_users(self, *, search: str | None, after: str | None, limit: int) -> list[User]:
        return await self._inner.list_users(search=search, after=after, limit=limit)

    async def sessions_for_user(self, user_id: str) -> list[Session]:
        return await self._inner.sessions_for_user(user_id)

    async def disable(
        self, user_id: str, at: datetime, *, event: Event, outbox: OutboxOfEnded | None = None
    ) -> tuple[bytes, ...] | None:
        ended = await self._inner.disable(user_id, at, event=event, outbox=outbox)
        if ended:
            await self._sessions.forget(*ended)
        return ended

    async def enable(self, user_id: str, *, event: Event) -> bool:
        return await self._inner.enable(user_id, event=event)

    async def delete_user(
        self, user_id: str, *, pseudonym: str, event: Event, outbox: OutboxOfEnded | None = None
    ) -> tuple[bytes, ...] | None:
        ended = await self._inner.delete_user(user_id, pseudonym=pseudonym, event=event, outbox=outbox)
        if ended:
            await self._sessions.forget(*ended)
        return ended

    async def events(self, query: EventQuery, *, limit: int) -> list[Event]:
        return await self._inner.events(query, limit=limit)


class RedisCounters:
    """Rate-limit counters shared by every node."""

    # One command per hit (a script runs atomically): count, and set the window's expiry when it opens.
    _HIT = """
    local count = redis.call('INCR', KEYS[1])
    if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
    return count
    """

    def __init__(self, client: aioredis.Redis, prefix: str = "passgate:limit:") -> None:
        self._redis = client
        self._prefix = prefix
        self._hit = client.register_script(self._HIT)

    async def hit(self, key: str, window_seconds: int, now: datetime) -> tuple[int, int]:
        window = int(now.timestamp()) // window_seconds
        name = f"{self._prefix}{key}:{window}"
        try:
            count = await self._hit(keys=[name], args=[window_seconds + 1])
        except RedisError as exc:
            raise StorageUnavailable() from exc
        return int(count), (window + 1) * window_seconds - int(now.timestamp())
