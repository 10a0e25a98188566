"""Statements compiled once per shape and run straight on the driver's cursor.

SQLAlchemy builds and compiles every statement tablerest runs, so quoting, dialects and types
are SQLAlchemy's. What this module saves is the per-request cost around that: building the
expression, generating the cache key, setting up the result. A statement is compiled once per
*shape* (the same filters, sort and fields; values are bound parameters), and the bind and
result processors of its column types are applied here, exactly as SQLAlchemy would.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeEngine

from .database import behind_pooler

Processor = Callable[[Any], Any]
_CACHES: weakref.WeakKeyDictionary[Engine, StatementCache] = weakref.WeakKeyDictionary()


@dataclass
class Prepared:
    """One compiled statement: its SQL, how to bind its parameters, how to read its rows."""

    sql: str
    positional: bool
    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    bind_processors: Mapping[str, Processor]
    dialect: Dialect
    result_types: Sequence[TypeEngine[Any]]
    # Known after the first execution: some drivers' processors depend on the column's
    # type code in the cursor description (PostgreSQL numerics), as in SQLAlchemy.
    result_processors: tuple[tuple[int, Processor], ...] | None = None

    def _processors(self, description: Sequence[Any]) -> tuple[tuple[int, Processor], ...]:
        found = []
        for index, type_ in enumerate(self.result_types):
            code = description[index][1] if index < len(description) else None
            impl = type_.dialect_impl(self.dialect)
            process = impl.result_processor(self.dialect, code)
            if process is not None:
                found.append((index, process))
        return tuple(found)

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        merged = {**self.defaults, **values}
        for name, process in self.bind_processors.items():
            if name in merged and merged[name] is not None:
                merged[name] = process(merged[name])
        if self.positional:
            return tuple(merged[name] for name in self.names)
        return merged

    def rows(self, cursor: Any, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        cursor.execute(self.sql, self.parameters(values))
        if cursor.description is None:  # a statement without RETURNING
            return []
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        processors = self.result_processors
        if processors is None:
            processors = self.result_processors = self._processors(cursor.description)
        return convert_rows(rows, processors) if processors and rows else rows


def convert_rows(rows: Sequence[Any], processors: Sequence[tuple[int, Any]],
                 ) -> list[tuple[Any, ...]]:
    """Driver rows with each non-null value at ``index`` passed through its processor."""
    if not rows:
        return []
    # Column by column: a list comprehension per converted column, the rest untouched.
    columns = list(zip(*rows, strict=True))
    for index, process in processors:
        columns[index] = tuple([None if value is None else process(value)
                                for value in columns[index]])
    return list(zip(*columns, strict=True))


def prepare(statement: ClauseElement, dialect: Dialect,
            result_types: Sequence[TypeEngine[Any]] = ()) -> Prepared:
    """Compile ``statement`` for ``dialect`` once."""
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    binds: dict[str, BindParameter[Any]] = {
        name: bind for name, bind in compiled.binds.items() if not name.startswith("%(")
    }
    positional = bool(dialect.positional)
    names = tuple(compiled.positiontup or ()) if positional else tuple(binds)
    defaults = {name: bind.value for name, bind in binds.items()
                if bind.value is not None and bind.callable is None}
    bind_processors: dict[str, Processor] = {}
    for name, bind in binds.items():
        bind_process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if bind_process is not None:
            bind_processors[name] = bind_process
    return Prepared(compiled.string, positional, names, defaults, bind_processors, dialect,
                    list(result_types))


def cache_for(engine: Engine) -> StatementCache:
    """The one statement cache of ``engine``."""
    found = _CACHES.get(engine)
    if found is None:
        found = _CACHES[engine] = StatementCache(engine)
    return found


class StatementCache:
    """Prepared statements by shape, for one engine; bounded, cleared when full."""

    def __init__(self, engine: Engine, size: int = 512) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self.size = size
        self.sqlite = engine.dialect.name == "sqlite"
        # Autocommit reads save BEGIN and ROLLBACK, except behind a transaction pooler,
        # where each checkout begins a transaction for its settings (database.py).
        self.autocommit = engine.dialect.name == "postgresql" and not behind_pooler(engine)
        self._entries: dict[Hashable, Prepared] = {}

    def first(self, cursor: Any, statement: Select[Any], params: Mapping[str, Any],
              ) -> tuple[Any, ...] | None:
        """The first row of a SELECT given as a constant with ``bindparam`` values."""
        prepared = self.get(("statement", statement), lambda: (
            statement, [column.type for column in statement.selected_columns]))
        rows = prepared.rows(cursor, params)
        return rows[0] if rows else None

    def get(self, key: Hashable, build: Callable[[], tuple[ClauseElement,
                                                        Sequence[TypeEngine[Any]]]]) -> Prepared:
        found = self._entries.get(key)
        if found is None:
            if len(self._entries) >= self.size:
                self._entries.clear()
            statement, types = build()
            found = self._entries[key] = prepare(statement, self.dialect, types)
        return found

    def prepare_once(self, build: Callable[[], tuple[ClauseElement,
                                                     Sequence[TypeEngine[Any]]]]) -> Prepared:
        statement, types = build()
        return prepare(statement, self.dialect, types)

    def cursor(self, snapshot: bool = False) -> DriverCursor:
        """A driver cursor on a pooled connection; ``snapshot`` reads in one transaction."""
        return DriverCursor(self, snapshot)


class DriverCursor:
    """``with cache.cursor(snapshot) as cursor``: a driver cursor on a pooled connection,
    given back when the block ends. A class, not a generator: it runs on every read.

    On SQLite a ``snapshot`` reads in one transaction (``BEGIN`` ... ``COMMIT``), so that a
    count and its page agree. On PostgreSQL the reads run in autocommit: one round trip per
    statement, without the ``BEGIN`` and the ``ROLLBACK`` the pool would otherwise cost (each
    statement of a READ COMMITTED transaction takes its own snapshot anyway). The connection
    goes back to the pool as it came, outside autocommit; a streamed read, whose server-side
    cursor needs a transaction, leaves autocommit first (``reading.FastReader.stream``).
    """

    __slots__ = ("_cache", "_connection", "_cursor", "_driver", "_snapshot")

    def __init__(self, cache: StatementCache, snapshot: bool) -> None:
        self._cache = cache
        self._snapshot = snapshot and cache.sqlite
        self._connection: Any = None
        self._cursor: Any = None
        self._driver: Any = None

    def __enter__(self) -> Any:
        connection = self._connection = self._cache.engine.raw_connection()
        try:
            if self._cache.autocommit:
                driver: Any = connection.driver_connection
                driver.autocommit = True
                self._driver = driver
            cursor = self._cursor = connection.cursor()
            if self._snapshot:
                cursor.execute("BEGIN")
        except BaseException:
            self._release()
            raise
        return cursor

    def __exit__(self, *exc: object) -> None:
        try:
            cursor = self._cursor
            try:
                if self._snapshot:
                    cursor.execute("COMMIT")
            finally:
                cursor.close()
        finally:
            self._release()

    def _release(self) -> None:
        connection, driver = self._connection, self._driver
        try:
            if driver is not None and driver.autocommit:
                driver.autocommit = False
        except Exception:  # a broken connection: never hand it out again
            connection.invalidate()
        finally:
            connection.close()
