"""Storage chosen by configuration: SQL (SQLite or PostgreSQL), with Redis for rate-limit counters and a session
cache."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from passgate.store.base import Storage
from passgate.store.sql import Database, sql_storage

Closer = Callable[[], Awaitable[None]]


def open_storage(
    database_url: str, redis_url: str = "", *, pool_size: int = 20, single_process: bool = False
) -> tuple[Storage, Closer]:
    """Open the configured storage; returns it and a coroutine function that closes its connections.

    `single_process`: nothing else serves this database (one SQLite process), so the outstanding challenges
    are remembered in memory and a challenge is spent by forgetting it: a ceremony writes only its outcome. A
    restart forgets pending ceremonies; people start them again. Otherwise a challenge (sealed, so `begin`
    writes nothing) is spent by a row in the database, written with the sign-in it let in (with Redis too: a
    mark there would cost a round trip of its own, and a flushed Redis would forget which were answered).
    """
    database = Database(database_url, pool_size=pool_size)
    storage = sql_storage(database)
    if single_process and not redis_url:
        from passgate.store.memory import MemoryChallenges

        storage = replace(storage, challenges=MemoryChallenges())
    client = None
    if redis_url:
        from passgate.store.redis import (
            CachedAdmin,
            CachedCredentials,
            CachedSessions,
            CachedSignIns,
            RedisCounters,
            connect,
        )

        client = connect(redis_url)
        sessions = CachedSessions(storage.sessions, client)
        storage = replace(
            storage,
            credentials=CachedCredentials(storage.credentials, sessions),
            sessions=sessions,
            sign_ins=CachedSignIns(storage.sign_ins, sessions),
            counters=RedisCounters(client),
            admin=CachedAdmin(storage.admin, sessions),
        )

    async def close() -> None:
        if client is not None:
            await client.aclose()
        await database.dispose()

    return storage, close
