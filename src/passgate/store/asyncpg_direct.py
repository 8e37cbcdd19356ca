"""The sign-in's statements on PostgreSQL, run on asyncpg itself.

As on SQLite (store.sqlite_direct), the statements are SQLAlchemy's, compiled once for asyncpg with their column
types' conversions (`Prepared`, `PreparedQuery`), and asyncpg prepares each once per connection (its statement
cache). What is skipped is SQLAlchemy's per-statement layer: execution context, the adapter between its
synchronous API and asyncpg's (a greenlet switch per call), and its result machinery. Used only for the credential
look-up and the sign-in record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from passgate.core.errors import StorageUnavailable

# The database away, going away or full: an outage (503), the connection discarded. Any other error is a bug.
OUTAGES = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,  # the connection closed under the driver
    asyncpg.InternalClientError,  # a connection a lost server left mid-operation (seen across a restart)
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or does not exist
    asyncpg.InsufficientResourcesError,  # class 53: too many connections, disk full, out of memory
    asyncpg.OperatorInterventionError,  # class 57: shutting down (a restart), starting up, cancelled
)


class Direct:
    """asyncpg's connections of a PostgreSQL engine, checked out of its pool, in autocommit: each statement is
    its own transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.dialect = engine.dialect

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """The driver's connection (an `asyncpg.Connection`).

        Raises:
            StorageUnavailable: the database cannot be reached; the connection is discarded.
        """
        async with self._engine.connect() as pooled:
            raw = await pooled.get_raw_connection()
            try:
                yield raw.driver_connection
            except OUTAGES as exc:
                await pooled.invalidate()
                raise StorageUnavailable() from exc
