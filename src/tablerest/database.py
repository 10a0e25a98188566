"""Engines with the right connection settings, and the one-transaction-per-request helpers.

SQLite: foreign keys on, WAL and a busy timeout for files, and transactions that really
begin (``BEGIN``, or ``BEGIN IMMEDIATE`` for writes, so two writers wait for each other
instead of failing half way). PostgreSQL: psycopg 3, sessions in UTC.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event

from .settings import Settings, normalise_url

# Set inside ``writing()``: a context variable costs less than an execution option per request.
_WRITING: ContextVar[bool] = ContextVar("tablerest_writing", default=False)
_CONFIGURED: weakref.WeakSet[Engine] = weakref.WeakSet()


def _configure_sqlite(engine: Engine, settings: Settings) -> None:
    is_file = engine.url.database not in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA case_sensitive_like=ON")  # like is case-sensitive, as on PostgreSQL
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        if is_file and settings.sqlite_wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        write = _WRITING.get()
        # Straight to the driver: this runs for every transaction, so skip SQLAlchemy's
        # statement machinery for two constant words.
        connection.connection.driver_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if write else "BEGIN")


def create_engine(url: str, settings: Settings | None = None, **options: Any) -> Engine:
    """An engine for ``url`` configured the way tablerest needs it."""
    settings = settings or Settings()
    url = normalise_url(url)
    backend = sa.make_url(url).get_backend_name()
    if backend == "postgresql":
        connect_args = dict(options.pop("connect_args", {}))
        connect_args.setdefault("options", "-c timezone=UTC")
        options["connect_args"] = connect_args
    engine = sa.create_engine(url, echo=settings.echo_sql, **options)
    if backend == "sqlite":
        _CONFIGURED.add(engine)
        _configure_sqlite(engine, settings)
    return engine


def configure_engine(engine: Engine, settings: Settings) -> None:
    """Apply tablerest's SQLite settings to an engine made elsewhere (Flask-SQLAlchemy)."""
    if engine.dialect.name == "sqlite" and engine not in _CONFIGURED:
        _CONFIGURED.add(engine)
        _configure_sqlite(engine, settings)


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        yield connection


@contextmanager
def writing() -> Iterator[None]:
    """SQLite transactions begun in this block take the write lock at once (``BEGIN
    IMMEDIATE``), so that two writers wait for each other instead of failing half way."""
    token = _WRITING.set(True)
    try:
        yield
    finally:
        _WRITING.reset(token)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """Commit when the block ends normally, roll back on any exception."""
    with engine.connect() as connection:
        with writing():
            transaction = connection.begin()
        with transaction:
            yield connection
