"""Two ways to run a read: prepared statements on a driver cursor, or SQLAlchemy.

Views ask a ``Reader`` for rows by statement shape; the fast reader compiles each shape once
(``statements.py``), the SQLAlchemy reader builds the statement and lets the resource's
``base_query`` hook and row policy see it. Both bind the same parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy import Engine, Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeEngine

from .database import read_transaction
from .resource import RequestContext
from .statements import StatementCache

#: A statement and the types of its result columns.
Built = tuple[Select[Any] | UpdateBase, Sequence[TypeEngine[Any]]]
Hook = Callable[[Select[Any], RequestContext], Select[Any]]


class Reader(Protocol):
    ctx: RequestContext | None

    def rows(self, key: Hashable | None, build: Callable[[], Built],
             params: Mapping[str, Any], hook: Hook | None = None) -> list[tuple[Any, ...]]: ...

    def need_ctx(self) -> RequestContext: ...


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

    def need_ctx(self) -> RequestContext:
        return self._ctx


@contextmanager
def fast_reader(cache: StatementCache, snapshot: bool) -> Iterator[Reader]:
    with cache.cursor(snapshot) as cursor:
        yield FastReader(cache, cursor)


@contextmanager
def sql_reader(engine: Engine, method: str, principal: Any) -> Iterator[Reader]:
    with read_transaction(engine) as connection:
        yield SqlReader(RequestContext(connection, method, principal))
