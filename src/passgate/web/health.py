"""GET /healthz (the process is up) and GET /readyz (it can serve: database, migrations, Redis).

The probes use their own connections, one per probe and none kept (NullPool): the answer is whether the database
accepts a connection now, not whether a pooled one is still open, and a probe never waits for, nor takes, a
connection the requests need.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from starlette.responses import JSONResponse

from passgate.store import schema
from passgate.store.sql import sync_url

router = APIRouter(tags=["operations"])

PROBE_TIMEOUT_SECONDS = 3.0


@functools.cache
def script_heads() -> frozenset[str]:
    """The head revision(s) of the migrations this version ships (read once: they change only with the code)."""
    from alembic.script import ScriptDirectory

    from passgate.store.migrate import alembic_config

    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


class Probe:
    """Readiness checks, and the few counts a scrape reports, on connections of their own.

    `database_url` None: the application was handed its storage (an embedding application, a test), which its
    owner watches; the probe then checks Redis alone and counts nothing.
    """

    def __init__(self, database_url: str | None, redis_url: str = "") -> None:
        self._engine: Engine | None = None
        if database_url is not None:
            connect_args: dict[str, Any] = {}
            if make_url(database_url).get_backend_name() == "postgresql":
                connect_args = {"connect_timeout": 2}
            self._engine = create_engine(sync_url(database_url), poolclass=NullPool, connect_args=connect_args)
        self._redis = None
        if redis_url:
            from passgate.store.redis import connect

            self._redis = connect(redis_url)

    async def failing(self) -> list[str]:
        """What keeps this process from serving: "database", "migrations", "redis" (empty: ready)."""
        failing: list[str] = []
        try:
            if self._engine is not None:
                at_head = await asyncio.wait_for(asyncio.to_thread(self._at_head), PROBE_TIMEOUT_SECONDS)
                if not at_head:
                    failing.append("migrations")
        except (SQLAlchemyError, OSError, TimeoutError):
            failing.append("database")
        if self._redis is not None:
            try:
                await asyncio.wait_for(self._redis.ping(), PROBE_TIMEOUT_SECONDS)
            except Exception:  # any failure to answer, whatever the client raises, is Redis not being there
                failing.append("redis")
        return failing

    def _at_head(self) -> bool:
        assert self._engine is not None
        with self._engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            try:
                versions = frozenset(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
            except SQLAlchemyError:  # the database answers, but was never migrated
                return False
        return versions == script_heads()

    async def active_sessions(self, now: datetime, idle: timedelta) -> int | None:
        """Sessions neither past their absolute end nor idle longer than `idle` (None: no database to count in).

        Raises:
            SQLAlchemyError, OSError, TimeoutError: the database did not answer.
        """
        engine = self._engine
        if engine is None:
            return None
        sessions = schema.sessions
        query = (
            select(func.count())
            .select_from(sessions)
            .where(sessions.c.expires_at > now, sessions.c.last_seen_at > now - idle)
        )

        def count() -> int:
            with engine.connect() as connection:
                return int(connection.execute(query).scalar_one())

        return await asyncio.wait_for(asyncio.to_thread(count), PROBE_TIMEOUT_SECONDS)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        if self._engine is not None:
            self._engine.dispose()


def probe_of(request: Request) -> Probe:
    probe: Probe = request.app.state.probe
    return probe


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process is up and answering (it says nothing of the database)."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """200 when the database answers, its migrations are at this version's head and Redis (if configured) answers
    PING; else 503 naming what fails."""
    failing = await probe_of(request).failing()
    if failing:
        return JSONResponse({"status": "unavailable", "failing": failing}, status_code=503)
    return JSONResponse({"status": "ok"})
