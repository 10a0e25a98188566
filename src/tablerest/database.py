"""Engines with the right connection settings, and the one-transaction-per-request helpers.

SQLite: foreign keys on, a busy timeout, and transactions that really begin (``BEGIN``, or
``BEGIN IMMEDIATE`` for writes, so two writers wait for each other instead of failing half
way). PostgreSQL: psycopg 3, sessions in UTC.

The journal mode is part of a SQLite file: ``PRAGMA journal_mode=WAL`` changes the file for
every later user. So WAL is switched on only for databases tablerest owns (an app's, which it
creates and migrates); an engine over someone else's file (reflection) leaves the journal mode
as the file has it, and a read-only engine opens the file read-only (``mode=ro``), so that
serving it never writes a byte.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event

from .settings import Settings, normalise_url

# Set inside ``writing()``: a context variable costs less than an execution option per request.
_WRITING: ContextVar[bool] = ContextVar("tablerest_writing", default=False)
_CONFIGURED: weakref.WeakSet[Engine] = weakref.WeakSet()


def _configure_sqlite(engine: Engine, settings: Settings, owned: bool = True) -> None:
    is_file = engine.url.database not in (None, "", ":memory:")
    wal = is_file and settings.sqlite_wal

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA case_sensitive_like=ON")  # like is case-sensitive, as on PostgreSQL
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        if wal and owned:
            cursor.execute("PRAGMA journal_mode=WAL")  # persists in the file
        if wal and (owned or _journal_mode(cursor) == "wal"):
            cursor.execute("PRAGMA synchronous=NORMAL")  # this connection only
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        write = _WRITING.get()
        # Straight to the driver: this runs for every transaction, so skip SQLAlchemy's
        # statement machinery for two constant words.
        connection.connection.driver_connection.execute(  # type: ignore[union-attr]
            "BEGIN IMMEDIATE" if write else "BEGIN")


def _journal_mode(cursor: Any) -> str:
    row = cursor.execute("PRAGMA journal_mode").fetchone()  # a read: changes nothing
    return str(row[0]).lower() if row else ""


def create_engine(url: str, settings: Settings | None = None, *, owned: bool = True,
                  read_only: bool = False, **options: Any) -> Engine:
    """An engine for ``url`` configured the way tablerest needs it.

    :param owned: the database is the app's own (tablerest creates and migrates it): a SQLite
        file is switched to WAL when ``settings.sqlite_wal``. False (reflection, someone
        else's database) keeps the file's journal mode.
    :param read_only: open the database for reading only: a SQLite file through a ``mode=ro``
        URI, so nothing can write to it; PostgreSQL sessions whose transactions are read-only.
    """
    settings = settings or Settings()
    parsed = sa.make_url(normalise_url(url))
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        connect_args = dict(options.pop("connect_args", {}))
        session = "-c timezone=UTC"
        if read_only:
            session += " -c default_transaction_read_only=on"
        connect_args.setdefault("options", session)
        options["connect_args"] = connect_args
    if backend == "sqlite" and read_only:
        parsed = read_only_sqlite_url(parsed)
    engine = sa.create_engine(parsed, echo=settings.echo_sql, **options)
    if backend == "sqlite":
        _CONFIGURED.add(engine)
        _configure_sqlite(engine, settings, owned=owned and not read_only)
    return engine


def read_only_sqlite_url(url: sa.URL) -> sa.URL:
    """``sqlite:///x.db`` as a ``file:`` URI opened with ``mode=ro``: SQLite then refuses
    every write to the file. In-memory databases and URIs that give a mode (or
    ``immutable``) are left as they are."""
    database = url.database
    if database in (None, "", ":memory:") or "mode" in url.query or "immutable" in url.query:
        return url
    if _true(url.query.get("uri")):
        return url.update_query_dict({"mode": "ro"})
    return url.set(database="file:" + quote(os.path.abspath(database), safe="/")
                   ).update_query_dict({"uri": "true", "mode": "ro"})


def _true(value: str | tuple[str, ...] | None) -> bool:
    text = value[-1] if isinstance(value, tuple) else value
    return text is not None and text.lower() in ("1", "true", "yes", "on")


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
