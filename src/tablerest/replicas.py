"""Read replicas: reads of the main database on a PostgreSQL streaming replica, writes (and
every read inside a write) on the primary.

- **Routing.** ``Replicas.reader`` gives the views' reads (lists, items, relation lists,
  includes, counts, exports, HTML pages, the PostgREST dialect's reads) a reader on one of the
  usable replicas, in turn; anything else runs on the primary: writes and what they read
  (``write_transaction``), logins, and the token stamp check (a changed password must end
  tokens at once, which a lagging replica cannot promise).
- **Read-your-writes.** After a write commits, ``database.write_transaction`` hands the
  connection to ``Replicas.committed``: it reads the primary's WAL insert position (which
  is past the commit record) and the response carries it, in the ``TableRest-Read-After``
  header and a short-lived cookie. A read that sends it back (header or cookie) is answered
  by a replica that has replayed that position, waited for briefly, else by the primary.
- **Health.** Each replica is checked at most once per check interval, inline, by one
  request at a time: a replica that cannot be reached, or whose replay is further behind
  than the lag limit, is skipped (the primary answers) until a later check finds it well.
  A checkout that fails falls back to the primary and marks the replica down.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

import psycopg
from flask import Request, Response, after_this_request, has_request_context, request
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from .database import after_commit, create_replica_engine
from .errors import BadRequest, ConfigurationError
from .outages import DISCONNECTED, unavailable
from .reading import Reader, fast_reader, sql_reader
from .served import Served
from .settings import Settings
from .statements import StatementCache, cache_for

log = logging.getLogger("tablerest")

#: The response header that carries a write's position, and the request header that sends
#: it back; the cookie carries the same value for browsers.
POSITION_HEADER = "TableRest-Read-After"
POSITION_COOKIE = "tablerest_read_after"
#: Seconds between two looks at a replica's replay position while a read waits for it.
_POLL = 0.005
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")
_FAILURES = (SQLAlchemyError, psycopg.Error)

# A server that is not in recovery (a URL that reaches a primary) is its own position.
_POSITION = ("pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
             "ELSE pg_current_wal_insert_lsn() END, '0/0')::bigint")
#: Seconds behind: none when everything received is replayed, else the age of the last
#: replayed transaction; NULL (unknown: skipped) when nothing was replayed since it started.
_LAG = ("CASE WHEN NOT pg_is_in_recovery() "
        "OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::float8 "
        "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END")
_CHECK_SQL = f"SELECT {_LAG}, {_POSITION}"
_POSITION_SQL = f"SELECT {_POSITION}"
_COMMIT_SQL = ("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint, "
               "current_setting('wal_block_size')::int")
#: The sizes of a WAL page's header (the first page of a segment has the long one).
_PAGE_HEADERS = (24, 40)


def format_position(position: int) -> str:
    """A WAL position as PostgreSQL writes it (``16/B374D848``)."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


def replayed_at(insert: int, page: int) -> int:
    """The position a replica has reached once it replayed everything before ``insert``.

    The insert position skips a page's header when the last record ended at the page's
    end, and a replica's replay position never does: it stops at the page boundary. Any
    record that ends between the boundary and ``insert`` started before the boundary, so
    a replay position at the boundary means it was replayed whole.
    """
    offset = insert % page
    return insert - offset if offset in _PAGE_HEADERS else insert


def parse_position(text: str) -> int | None:
    match = _LSN.fullmatch(text.strip())
    return None if match is None else (int(match[1], 16) << 32) | int(match[2], 16)


def requested_position(req: Request) -> int | None:
    """The write position a read must see: the header's, else the cookie's (a malformed
    header is the client's mistake, a malformed cookie is ignored)."""
    header = req.headers.get(POSITION_HEADER)
    if header is not None:
        position = parse_position(header)
        if position is None:
            raise BadRequest(f"{POSITION_HEADER} must be a position as a write's response "
                             f"gave it, like '0/16B3748', got {header!r}.")
        return position
    if not req.cookies:
        return None
    cookie = req.cookies.get(POSITION_COOKIE)
    return None if cookie is None else parse_position(cookie)


def primary_reader(served: Served, fast: bool, snapshot: bool, method: str,
                   principal: Any) -> AbstractContextManager[Reader]:
    if fast:
        return fast_reader(served.statements, snapshot)
    return sql_reader(served.engine, method, principal)


def request_reader(replicas: Replicas | None, served: Served, fast: bool, snapshot: bool,
                   method: str, principal: Any) -> AbstractContextManager[Reader]:
    """The reader of one request's read: prepared statements on a driver cursor when
    ``fast``, else a SQLAlchemy read transaction; on a replica when there are some."""
    if replicas is None:
        return primary_reader(served, fast, snapshot, method, principal)
    return replicas.reader(served, fast, snapshot, method, principal,
                           requested_position(request))


class Replica:
    """One replica: its engine, its statements, and what the last check found."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements: StatementCache = cache_for(engine)
        self.name = engine.url.render_as_string(hide_password=True)
        self.usable = self.checked = False  # unused until its first check
        self.replayed = -1  # the highest position seen replayed (replay only moves on)
        self.next_check = 0.0
        self._checking = threading.Lock()

    def check(self, now: float, settings: Settings) -> None:
        """Measure the lag if a check is due; one request checks, the others go on."""
        if now < self.next_check or not self._checking.acquire(blocking=False):
            return
        try:
            self.next_check = now + settings.replica_check_interval
            try:
                lag, position = self._one_row(_CHECK_SQL)
            except _FAILURES as exc:
                self.down(exc)
                return
            self.saw(position)
            usable = lag is not None and lag <= settings.replica_max_lag
            if usable != self.usable and (self.checked or not usable):
                log.warning("replica %s is %s (%s s behind)", self.name,
                            "used again" if usable else "skipped", lag)
            self.usable, self.checked = usable, True
        finally:
            self._checking.release()

    def poll(self) -> None:
        """Read the replay position again (a read waits for a write's position)."""
        try:
            self.saw(self._one_row(_POSITION_SQL)[0])
        except _FAILURES as exc:
            self.down(exc)

    def saw(self, position: int | None) -> None:
        if position is not None and position > self.replayed:
            self.replayed = int(position)

    def down(self, error: BaseException) -> None:
        """Skip this replica until its next check; its pooled connections are stale."""
        if self.usable:
            log.warning("replica %s is skipped: %s", self.name, error)
        self.usable = False
        self.engine.dispose()

    def _one_row(self, sql: str) -> tuple[Any, ...]:
        with self.engine.connect() as connection:
            row = connection.exec_driver_sql(sql).one()
            connection.rollback()
        return tuple(row)


class Replicas:
    """The replicas of one app's main database and the choice of one for each read."""

    def __init__(self, primary: Engine, settings: Settings) -> None:
        if primary.dialect.name != "postgresql":
            raise ConfigurationError(
                "DATABASE_REPLICA_URLS is set, but the main database is "
                f"{primary.dialect.name!r}: replicas are PostgreSQL streaming replicas of a "
                "PostgreSQL primary.")
        self.primary = primary
        self.settings = settings
        self.replicas = [Replica(create_replica_engine(url, settings))
                         for url in settings.replica_urls]
        self._turn = itertools.count()
        # The position outlives its use: once this old, a replica that is still usable
        # has replayed it (its lag, checked this recently, is under the limit).
        self.cookie_age = math.ceil(settings.replica_max_lag
                                    + settings.replica_check_interval) + 1
        after_commit(primary, self.committed)

    def reader(self, served: Served, fast: bool, snapshot: bool, method: str,
               principal: Any, position: int | None) -> AbstractContextManager[Reader]:
        """A reader on a replica that may answer, else on the primary."""
        replica = self.choose(position) if served.engine is self.primary else None
        if replica is None:
            return primary_reader(served, fast, snapshot, method, principal)

        def on_replica() -> AbstractContextManager[Reader]:
            assert replica is not None
            if fast:
                return fast_reader(replica.statements, snapshot)
            return sql_reader(replica.engine, method, principal)

        return _routed(replica, on_replica,
                       lambda: primary_reader(served, fast, snapshot, method, principal))

    def choose(self, position: int | None) -> Replica | None:
        """A usable replica (in turn) that has replayed ``position``, waited for briefly;
        None: the primary answers."""
        now = time.monotonic()
        for replica in self.replicas:
            replica.check(now, self.settings)
        usable = [replica for replica in self.replicas if replica.usable]
        if not usable:
            return None
        start = next(self._turn) % len(usable)
        ordered = usable[start:] + usable[:start]
        if position is None:
            return ordered[0]
        deadline = now + self.settings.replica_wait
        while True:  # looks once more (polls) even when there is no time to wait
            for replica in ordered:
                if replica.replayed >= position:
                    return replica
            for replica in ordered:
                replica.poll()
                if replica.usable and replica.replayed >= position:
                    return replica
            ordered = [replica for replica in ordered if replica.usable]
            left = deadline - time.monotonic()
            if left <= 0 or not ordered:
                return None
            time.sleep(min(_POLL, left))

    def committed(self, connection: Connection) -> None:
        """After a write commits: its position, for the response to carry."""
        insert, page = connection.exec_driver_sql(_COMMIT_SQL).one()
        connection.rollback()
        if not has_request_context():
            return
        text, age = format_position(replayed_at(int(insert), int(page))), self.cookie_age

        def carry(response: Response) -> Response:
            response.headers[POSITION_HEADER] = text
            response.set_cookie(POSITION_COOKIE, text, max_age=age, httponly=True,
                                samesite="Lax", secure=request.is_secure,
                                path=request.script_root or "/")
            return response

        after_this_request(carry)

    def dispose(self, close: bool = True) -> None:
        """Drop every replica's pool (``close=False`` in a forked worker: the connections
        are the parent's, to leave alone)."""
        for replica in self.replicas:
            replica.engine.dispose(close=close)


@contextmanager
def _routed(replica: Replica, on_replica: Callable[[], AbstractContextManager[Reader]],
            on_primary: Callable[[], AbstractContextManager[Reader]]) -> Iterator[Reader]:
    """The replica's reader; the primary's when the replica cannot give a connection. A
    replica that goes away during the read is skipped from then on (this read is a 503)."""
    with ExitStack() as stack:
        try:
            reader = stack.enter_context(on_replica())
        except _FAILURES as exc:
            replica.down(exc)
            reader = stack.enter_context(on_primary())
            yield reader
            return
        try:
            yield reader
        except Exception as exc:
            if unavailable(exc) in DISCONNECTED:
                replica.down(exc)
            raise
