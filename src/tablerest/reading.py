"""Two ways to run a read: prepared statements on a driver cursor, or SQLAlchemy.

Views ask a ``Reader`` for rows by statement shape; the fast reader compiles each shape once
(``statements.py``), the SQLAlchemy reader builds the statement and lets the resource's
``base_query`` hook and row policy see it. Both bind the same parameters.

``stream`` runs a statement at once (its errors are the request's) and hands back its rows
in batches, fetched as they are consumed: on PostgreSQL through a server-side cursor, so
that a streamed export holds one batch in memory, never the whole result.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import count
from typing import Any, Protocol

from sqlalchemy import Engine, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeEngine

from .database import read_transaction, renew_clock
from .resource import RequestContext
from .statements import Prepared, StatementCache, convert_rows

#: A statement and the types of its result columns.
Built = tuple[Select[Any] | UpdateBase, Sequence[TypeEngine[Any]]]
Hook = Callable[[Select[Any], RequestContext], Select[Any]]


class Reader(Protocol):
    ctx: RequestContext | None

    def rows(self, key: Hashable | None, build: Callable[[], Built],
             params: Mapping[str, Any], hook: Hook | None = None) -> list[tuple[Any, ...]]: ...

    def stream(self, key: Hashable | None, build: Callable[[], Built],
               params: Mapping[str, Any], hook: Hook | None = None,
               size: int = 1000) -> Batches: ...

    def need_ctx(self) -> RequestContext: ...


class Batches:
    """The rows of a running statement, ``size`` at a time; ``close`` ends the statement
    (idempotent, and called by the response when the client is gone or the rows are sent).
    """

    def __init__(self, fetch: Callable[[int], Sequence[Any]], size: int,
                 convert: Callable[[Sequence[Any]], list[tuple[Any, ...]]],
                 close: Callable[[], None]) -> None:
        self._fetch, self._size, self._convert, self._close = fetch, size, convert, close
        self._done = False

    def __iter__(self) -> Iterator[list[tuple[Any, ...]]]:
        while not self._done:
            renew_clock()  # each batch gets the whole statement time limit
            rows = self._fetch(self._size)
            if not rows:
                self.close()
                return
            yield self._convert(rows)

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._close()


_STREAMS = count()


def _processors(prepared: Prepared, description: Sequence[Any],
                ) -> list[tuple[int, Callable[[Any], Any]]]:
    """The result processors of ``prepared``'s columns, as ``Prepared.rows`` applies them."""
    found: list[tuple[int, Callable[[Any], Any]]] = []
    for index, type_ in enumerate(prepared.result_types):
        code = description[index][1] if index < len(description) else None
        process = type_.dialect_impl(prepared.dialect).result_processor(prepared.dialect, code)
        if process is not None:
            found.append((index, process))
    return found


class FastReader:
    """Prepared statements, compiled once per ``key``; hooks do not apply here."""

    ctx: RequestContext | None = None

    def __init__(self, cache: StatementCache, cursor: Any) -> None:
        self.cache, self.cursor = cache, cursor

    def rows(self, key: Hashable | None, build: Callable[[], Built],
             params: Mapping[str, Any], hook: Hook | None = None) -> list[tuple[Any, ...]]:
        cache = self.cache
        prepared = cache.prepare_once(build) if key is None else cache.get(key, build)
        try:
            return prepared.rows(self.cursor, params)
        except cache.driver_error as exc:  # the same exception SQLAlchemy would raise
            raise DBAPIError.instance(prepared.sql, dict(params), exc,
                                      cache.driver_error) from exc

    def stream(self, key: Hashable | None, build: Callable[[], Built],
               params: Mapping[str, Any], hook: Hook | None = None,
               size: int = 1000) -> Batches:
        cache = self.cache
        prepared = cache.prepare_once(build) if key is None else cache.get(key, build)
        server_side = cache.dialect.name == "postgresql"
        cursor = self.cursor
        if server_side:
            driver = cursor.connection
            if driver.autocommit:  # a server-side cursor lives in a transaction
                driver.autocommit = False
            # psycopg reads a whole result on execute unless the cursor is a named one.
            cursor = driver.cursor(name=f"tablerest_stream_{next(_STREAMS)}")
        try:
            cursor.execute(prepared.sql, prepared.parameters(params))
        except cache.driver_error as exc:
            if server_side:
                cursor.close()
            raise DBAPIError.instance(prepared.sql, dict(params), exc,
                                      cache.driver_error) from exc
        processors = _processors(prepared, cursor.description)

        def convert(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
            return convert_rows(rows, processors) if processors else list(rows)

        return Batches(cursor.fetchmany, size, convert,
                       cursor.close if server_side else lambda: None)

    def need_ctx(self) -> RequestContext:
        raise RuntimeError("the fast reader has no SQLAlchemy connection")


class SqlReader:
    """SQLAlchemy execution on the request's connection, with the resource's hook."""

    def __init__(self, ctx: RequestContext) -> None:
        self.ctx: RequestContext | None = ctx
        self._ctx = ctx

    def rows(self, key: Hashable | None, build: Callable[[], Built],
             params: Mapping[str, Any], hook: Hook | None = None) -> list[tuple[Any, ...]]:
        statement, _types = build()
        if hook is not None and isinstance(statement, Select):
            statement = hook(statement, self._ctx)
        result = self._ctx.connection.execute(statement, dict(params))
        return [tuple(row) for row in result] if result.returns_rows else []

    def stream(self, key: Hashable | None, build: Callable[[], Built],
               params: Mapping[str, Any], hook: Hook | None = None,
               size: int = 1000) -> Batches:
        statement, _types = build()
        if hook is not None and isinstance(statement, Select):
            statement = hook(statement, self._ctx)
        connection = self._ctx.connection.execution_options(stream_results=True)
        result = connection.execute(statement, dict(params))
        return Batches(result.fetchmany, size, lambda rows: [tuple(row) for row in rows],
                       result.close)

    def need_ctx(self) -> RequestContext:
        return self._ctx


class FastReading:
    """``with fast_reader(cache, snapshot) as reader``: a ``FastReader`` on a driver cursor
    of its own (``StatementCache.cursor``), given back when the block ends."""

    __slots__ = ("_cache", "_cursor")

    def __init__(self, cache: StatementCache, snapshot: bool) -> None:
        self._cache = cache
        self._cursor = cache.cursor(snapshot)

    def __enter__(self) -> Reader:
        return FastReader(self._cache, self._cursor.__enter__())

    def __exit__(self, *exc: object) -> None:
        self._cursor.__exit__(*exc)


def fast_reader(cache: StatementCache, snapshot: bool) -> FastReading:
    return FastReading(cache, snapshot)


@contextmanager
def sql_reader(engine: Engine, method: str, principal: Any) -> Iterator[Reader]:
    with read_transaction(engine) as connection:
        yield SqlReader(RequestContext(connection, method, principal))
