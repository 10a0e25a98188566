"""Engines with the right connection settings, and the one-transaction-per-request helpers.

SQLite: foreign keys on, a busy timeout, and transactions that really begin (``BEGIN``, or
``BEGIN IMMEDIATE`` for writes, so two writers wait for each other instead of failing half
way). PostgreSQL: psycopg 3, sessions in UTC. Behind a transaction pooler
(``TABLEREST_DATABASE_POOLER=transaction``: PgBouncer's ``pool_mode = transaction``, where
each transaction may run on another server connection) no prepared statements, and the
settings are made per transaction, never left on a session (``_configure_pooled``).

Nothing waits without a limit: a free pooled connection within ``TABLEREST_POOL_TIMEOUT_MS``,
a statement within ``TABLEREST_STATEMENT_TIMEOUT`` (PostgreSQL's ``statement_timeout``; on
SQLite a progress handler that interrupts a statement once its request's clock has run out),
a new PostgreSQL connection within a few seconds. A pooled PostgreSQL connection that broke
(the server restarted) is replaced at checkout. The errors become 503s (``outages.py``).

The journal mode is part of a SQLite file: ``PRAGMA journal_mode=WAL`` changes the file for
every later user. So WAL is switched on only for databases tablerest owns (an app's, which it
creates and migrates); an engine over someone else's file (reflection) leaves the journal mode
as the file has it, and a read-only engine opens the file read-only (``mode=ro``), so that
serving it never writes a byte.
"""

from __future__ import annotations

import logging
import os
import select
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import quote

import sqlalchemy as sa
from flask import has_request_context
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError

from .errors import ConfigurationError
from .settings import Settings, normalise_url

log = logging.getLogger("tablerest")
T = TypeVar("T")
#: psycopg's transaction status of a connection outside any transaction.
_IDLE = 0

# Set inside ``writing()``: a context variable costs less than an execution option per request.
_WRITING: ContextVar[bool] = ContextVar("tablerest_writing", default=False)
# Set while a ``Connection`` joins a transaction ``DriverWrite`` began on the driver.
_JOINING: ContextVar[bool] = ContextVar("tablerest_joining", default=False)
_CONFIGURED: weakref.WeakSet[Engine] = weakref.WeakSet()
#: PostgreSQL engines behind a transaction pooler (``TABLEREST_DATABASE_POOLER``).
_POOLED: weakref.WeakSet[Engine] = weakref.WeakSet()
#: psycopg's connection argument, also read from the URL's query.
_PREPARE = "prepare_threshold"
#: (time limit, deadline) of the statements of the request running in this context.
_CLOCK: ContextVar[tuple[float, float] | None] = ContextVar("tablerest_clock", default=None)
#: SQLite calls the progress handler every this many virtual machine instructions.
_PROGRESS_STEPS = 20000
#: Seconds a new PostgreSQL connection may take.
CONNECT_TIMEOUT = 5
#: Primary engines that have replicas: called with the connection after each write commits.
_AFTER_COMMIT: weakref.WeakKeyDictionary[Engine, Callable[[Connection], None]] = (
    weakref.WeakKeyDictionary())


def start_clock(limit: float) -> None:
    """Start the statement clock of this request (at each connection checkout)."""
    _CLOCK.set((limit, time.monotonic() + limit))


def renew_clock() -> None:
    """Give the next statements of this request a full time limit again (a streamed export
    fetches batch after batch for as long as the client reads: each batch is timed)."""
    clock = _CLOCK.get()
    if clock is not None:
        _CLOCK.set((clock[0], time.monotonic() + clock[0]))


def _past_deadline() -> int:
    clock = _CLOCK.get()
    return 1 if clock is not None and time.monotonic() > clock[1] else 0


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
            # this connection only: NORMAL survives a crash of the process, FULL a power loss
            cursor.execute(f"PRAGMA synchronous={settings.sqlite_synchronous}")
        cursor.close()
        if settings.statement_timeout_ms:
            dbapi_connection.set_progress_handler(_past_deadline, _PROGRESS_STEPS)

    if settings.statement_timeout_ms:
        limit = settings.statement_timeout_ms / 1000

        @event.listens_for(engine, "checkout")
        def on_checkout(_dbapi: Any, _record: Any, _proxy: Any) -> None:
            # Requests are timed; console work (a migration, a big seed) is not.
            if has_request_context():
                start_clock(limit)
            else:
                _CLOCK.set(None)

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        if _JOINING.get():  # the transaction is open on the driver already (DriverWrite)
            return
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
    pooled = backend == "postgresql" and settings.database_pooler == "transaction"
    if backend == "postgresql":
        parsed, options["connect_args"] = _postgres_connect_args(
            parsed, dict(options.pop("connect_args", {})), settings, read_only)
    if backend == "postgresql" or parsed.database not in (None, "", ":memory:"):
        options.setdefault("pool_timeout", settings.pool_timeout)
    if backend == "sqlite" and read_only:
        parsed = read_only_sqlite_url(parsed)
    engine = sa.create_engine(parsed, echo=settings.echo_sql, **options)
    if backend == "postgresql":
        event.listen(engine, "checkout", _replace_broken)
    if pooled:
        _configure_pooled(engine, settings, read_only)
    if backend == "sqlite":
        _CONFIGURED.add(engine)
        _configure_sqlite(engine, settings, owned=owned and not read_only)
    return engine


def untimed(connection: Connection) -> None:
    """No statement time limit on ``connection``: for the console's long work (migrations,
    seeding), which a request's limit must not cut short. Behind a transaction pooler for
    this transaction only: a session setting would stay on the server connection, for
    whichever client gets it next."""
    _CLOCK.set(None)
    if connection.dialect.name == "postgresql":
        scope = "LOCAL" if connection.engine in _POOLED else "SESSION"
        connection.exec_driver_sql(f"SET {scope} statement_timeout = 0")


def behind_pooler(engine: Engine) -> bool:
    """Whether ``engine`` reaches PostgreSQL through a transaction pooler: its checkouts
    begin a transaction (``_configure_pooled``), so its connections stay out of autocommit."""
    return engine in _POOLED


def _postgres_connect_args(url: sa.URL, connect_args: dict[str, Any], settings: Settings,
                           read_only: bool) -> tuple[sa.URL, dict[str, Any]]:
    """psycopg's arguments: the session settings, and ``prepare_threshold`` (from the URL,
    where SQLAlchemy would pass it on as a string; else none behind a transaction pooler)."""
    if _PREPARE in url.query:
        connect_args.setdefault(_PREPARE, _prepare_threshold(url.query[_PREPARE]))
        url = url.difference_update_query([_PREPARE])
    connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT)
    if settings.database_pooler == "transaction":
        # PgBouncer refuses the ``options`` startup parameter, and would not pass it on to
        # the server connections it shares: the settings are made per transaction instead.
        connect_args.setdefault(_PREPARE, None)
        return url, connect_args
    session = "-c timezone=UTC"
    if read_only:
        session += " -c default_transaction_read_only=on"
    if settings.statement_timeout_ms:
        session += f" -c statement_timeout={int(settings.statement_timeout_ms)}"
    connect_args.setdefault("options", session)
    return url, connect_args


def _prepare_threshold(value: str | tuple[str, ...]) -> int | None:
    text = (value[-1] if isinstance(value, tuple) else value).strip().lower()
    if text in ("", "none"):
        return None
    if not text.isdigit():
        raise ConfigurationError(
            f"The database URL's prepare_threshold must be a whole number (executions of a "
            f"query before psycopg prepares it on the server) or 'none', got {value!r}.")
    return int(text)


def _configure_pooled(engine: Engine, settings: Settings, read_only: bool) -> None:
    """Session settings that survive a transaction pooler (PgBouncer, ``pool_mode =
    transaction``), which hands each transaction to any of its server connections.

    The time zone is set once per connection: PgBouncer tracks ``TimeZone`` for each client
    and sets it again on whichever server connection serves it. The statement time limit
    (and read-only) is set at each checkout, for the transaction that checkout begins, with
    ``SET LOCAL``: a session ``SET`` would be left on a server connection that other
    clients share.
    """
    _POOLED.add(engine)
    statements = ["SET TRANSACTION READ ONLY"] if read_only else []
    if settings.statement_timeout_ms:
        statements.append(f"SET LOCAL statement_timeout = {int(settings.statement_timeout_ms)}")
    per_transaction = "; ".join(statements)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("SET TIME ZONE 'UTC'")
        dbapi_connection.commit()

    @event.listens_for(engine, "set_connection_execution_options")
    def on_options(connection: Connection, options: dict[str, Any]) -> None:
        # psycopg changes the isolation level (autocommit: Alembic's autocommit_block) only
        # outside a transaction, and SQLAlchemy asks only outside its own: end the one the
        # checkout began for its settings.
        if "isolation_level" in options and not connection.in_transaction():
            connection.connection.driver_connection.rollback()  # type: ignore[union-attr]

    if per_transaction:
        lost = engine.dialect.loaded_dbapi.OperationalError

        @event.listens_for(engine, "checkout")
        def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
            try:
                dbapi_connection.execute(per_transaction)
            except lost as exc:  # the server (or the pooler) went away: a new connection
                raise sa.exc.DisconnectionError(str(exc)) from exc


def _replace_broken(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server dropped (a restart) is replaced, not handed out."""
    if getattr(dbapi_connection, "broken", False) or getattr(dbapi_connection, "closed", False):
        raise sa.exc.DisconnectionError("the pooled connection is broken")


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
        if _AFTER_COMMIT:  # empty unless replicas are configured: nothing more per write
            committed = _AFTER_COMMIT.get(engine)
            if committed is not None:
                _report_commit(committed, connection)


class DriverWrite:
    """``with DriverWrite(engine) as write``: one write transaction on a pooled driver
    connection, as ``write_transaction`` makes it, without SQLAlchemy's ``Connection`` unless
    something asks for one (``write.connection()``: a hook or policy that runs SQL).

    The checkout runs the pool's events as any checkout does (the statement clock, the
    settings behind a transaction pooler, a broken connection replaced). SQLite begins with
    ``BEGIN IMMEDIATE``; psycopg begins at the first statement. The block commits when it
    ends normally and rolls back on any exception; after the commit the engine's after-commit
    callback (replicas) gets a ``Connection`` on the same driver connection. Driver errors
    are raised as SQLAlchemy's, as from ``write_transaction``.
    """

    __slots__ = ("_joined", "_raw", "cursor", "engine")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._raw: Any = None
        self._joined: Connection | None = None
        self.cursor: Any = None

    def __enter__(self) -> DriverWrite:
        raw = self._raw = self.engine.raw_connection()
        try:
            cursor = self.cursor = raw.cursor()
            if self.engine.dialect.name == "sqlite":
                self._driver("BEGIN IMMEDIATE", cursor.execute, "BEGIN IMMEDIATE")
        except BaseException:
            self._release()
            raise
        return self

    def connection(self) -> Connection:
        """A SQLAlchemy ``Connection`` in this transaction (made at the first call)."""
        joined = self._joined
        if joined is None:
            joined = self._joined = Connection(self.engine, connection=self._raw)
            token = _JOINING.set(True)  # the driver is in the transaction: no second BEGIN
            try:
                joined.begin()
            finally:
                _JOINING.reset(token)
        return joined

    def alone(self, statement: Callable[[], T]) -> T:
        """Run ``statement``, the transaction's only one: on PostgreSQL in autocommit when
        nothing ran before it (one round trip, where ``BEGIN``, the statement and ``COMMIT``
        were three); else in the transaction as any other. Not behind a transaction
        pooler, whose checkout began a transaction for its settings."""
        driver = self._raw.driver_connection
        if self.engine.dialect.name != "postgresql" or self._joined is not None \
                or self.engine in _POOLED or driver.info.transaction_status != _IDLE:
            return statement()
        driver.autocommit = True
        try:
            return statement()
        finally:
            try:
                driver.autocommit = False
            except Exception:  # a broken connection: never hand it out again
                self._raw.invalidate()

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is not None:
                self._rollback()
                return
            joined = self._joined
            if joined is not None and joined.in_transaction():
                joined.commit()
            else:
                self._driver("COMMIT", self._raw.commit)
            if _AFTER_COMMIT:  # empty unless replicas are configured
                committed = _AFTER_COMMIT.get(self.engine)
                if committed is not None:
                    if self._joined is None:
                        self._joined = Connection(self.engine, connection=self._raw)
                    _report_commit(committed, self._joined)
        finally:
            self._release()

    def _rollback(self) -> None:
        """Roll back after an error; a connection that cannot is never handed out again
        (the error the block raised is the one the client hears of)."""
        joined = self._joined
        try:
            if joined is not None and joined.in_transaction():
                joined.rollback()
            else:
                self._raw.rollback()
        except Exception:
            if joined is None:
                self._raw.invalidate()
            elif not joined.invalidated:
                joined.invalidate()

    def _driver(self, sql: str, action: Callable[..., Any], *args: Any) -> None:
        error = self.engine.dialect.loaded_dbapi.Error
        try:
            action(*args)
        except error as exc:
            dialect = self.engine.dialect
            lost = dialect.is_disconnect(exc, self._raw.dbapi_connection, self.cursor)
            if lost:
                self._raw.invalidate(exc)
            raise DBAPIError.instance(sql, None, exc, error, connection_invalidated=lost,
                                      dialect=dialect) from exc

    def _release(self) -> None:
        joined, raw, cursor = self._joined, self._raw, self.cursor
        self._joined = self._raw = self.cursor = None
        if joined is not None:
            joined.close()  # gives the driver connection back to the pool
            return
        try:
            if cursor is not None:
                cursor.close()
        except Exception:  # a broken connection: the pool's reset replaces it
            pass
        finally:
            raw.close()


def after_commit(engine: Engine, callback: Callable[[Connection], None]) -> None:
    """Call ``callback`` with the connection after each ``write_transaction`` of ``engine``
    commits (replicas.py reads the commit's position there)."""
    _AFTER_COMMIT[engine] = callback


def _report_commit(callback: Callable[[Connection], None], connection: Connection) -> None:
    # The write is committed: a failure here must not turn it into an error the client
    # would retry (a second insert). Without a position the client may read an older copy.
    try:
        callback(connection)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("the position of a committed write could not be read: %s", exc)


def create_replica_engine(url: str, settings: Settings) -> Engine:
    """An engine for a read replica: the primary's pool and time limits, read-only sessions,
    and pooled connections that the replica dropped (it stopped or restarted) replaced at
    checkout without a round trip."""
    engine = create_engine(url, settings, read_only=True)
    event.listen(engine, "checkout", _replace_dropped)
    return engine


def _replace_dropped(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """An idle connection has nothing to read unless the server sent its goodbye (a
    shutdown's error message, or the socket's end): then it is replaced, not handed out."""
    try:
        descriptor = dbapi_connection.pgconn.socket
    except Exception:  # closed already: the pool's own checks replace it
        raise sa.exc.DisconnectionError("the pooled connection is closed") from None
    poller = select.poll()
    poller.register(descriptor, select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        raise sa.exc.DisconnectionError("the replica closed the pooled connection")
