"""The sign-in's statements on SQLite, run on the driver itself.

The statements are SQLAlchemy's, compiled once for SQLite with their column types' conversions: the same SQL and
the same stored forms as through SQLAlchemy. What is skipped is SQLAlchemy's per-statement Python layer (execution
context, parameter and result machinery), which costs several times what SQLite does to run these statements.
Used only where the profile shows it matters: the credential look-up, the sign-in record, the challenge's mark and
the sign-up (`Direct.run`). `Prepared` and `PreparedQuery` serve PostgreSQL's direct path too (store.asyncpg_direct),
compiled for asyncpg.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Insert, Select

from passgate.core.errors import StorageUnavailable

Processor = Callable[[Any], Any] | None
_GIVEN = object()  # a parameter the caller gives, not a literal compiled into the statement


class Prepared:
    """One statement compiled for a dialect: its SQL, and how each parameter is converted into it."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, *, column_keys: Sequence[str] | None = None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self._parameters: list[tuple[str, Any, Processor]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            given = bind.required or (bind.callable is None and bind.value is None)
            fixed = _GIVEN if given else bind.effective_value
            self._parameters.append((name, fixed, bind.type.dialect_impl(dialect).bind_processor(dialect)))

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        converted = []
        for name, fixed, process in self._parameters:
            value = values[name] if fixed is _GIVEN else fixed  # a missing parameter is a KeyError, not a NULL
            converted.append(process(value) if process is not None and value is not None else value)
        return tuple(converted)


class PreparedQuery(Prepared):
    """A SELECT, with its columns' conversions from what the driver returns."""

    def __init__(self, statement: Select[Any], dialect: Dialect) -> None:
        super().__init__(statement, dialect)
        self.names = [str(column.key) for column in statement.selected_columns]
        self._results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in statement.selected_columns
        ]

    def row(self, raw: Sequence[Any]) -> dict[str, Any]:
        return {
            name: process(value) if process is not None and value is not None else value
            for name, process, value in zip(self.names, self._results, raw, strict=True)
        }


class Direct:
    """The driver's connections of a SQLite engine, checked out of its pool (so its set-up applies)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.dialect = engine.dialect
        self._compiled: dict[tuple[ClauseElement, tuple[str, ...]], Prepared] = {}

    def run(self, driver: sqlite3.Connection, statement: ClauseElement, values: Mapping[str, Any]) -> sqlite3.Cursor:
        """Run `statement` with `values` on a connection of `write` or `read`, compiled on its first run with
        these names (an INSERT's columns are the names given, unless it inserts from a SELECT)."""
        key = (statement, tuple(values))
        if (prepared := self._compiled.get(key)) is None:
            columns = key[1] if isinstance(statement, Insert) and statement.select is None else None
            prepared = self._compiled[key] = Prepared(statement, self.dialect, column_keys=columns)
        return driver.execute(prepared.sql, prepared.parameters(values))

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE, as every write of the storage), committed when the block ends
        and rolled back if it raises.

        Raises:
            StorageUnavailable: the database cannot be written (locked past the busy timeout, disk full...).
        """
        with self._connection() as connection:
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StorageUnavailable() from exc
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            try:
                connection.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                connection.execute("ROLLBACK")
                raise StorageUnavailable() from exc

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit: each statement reads the latest committed state."""
        with self._connection() as connection:
            yield connection

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        pooled = self._engine.raw_connection()
        try:
            connection = pooled.driver_connection
            assert isinstance(connection, sqlite3.Connection)
            yield connection
        except sqlite3.IntegrityError:
            raise  # a bug, not an outage
        except sqlite3.OperationalError as exc:
            raise StorageUnavailable() from exc
        finally:
            pooled.close()
