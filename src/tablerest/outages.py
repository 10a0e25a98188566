"""Which database errors are the database being busy or away, not a bug: a 503 with
``Retry-After`` tells the client to try again, where a 500 would say the server is broken.

- SQLite still locked after its busy timeout ("database is locked");
- no pooled connection free within the pool's timeout;
- PostgreSQL: the server unreachable or restarting, a connection that broke mid-request,
  a statement cancelled by ``statement_timeout``, a lock not granted in ``lock_timeout``,
  and serialization failures or deadlocks (the transaction was rolled back whole).
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

#: PostgreSQL SQLSTATEs that mean "try again later".
_RETRYABLE_STATES = {
    "57014": "A statement ran past its time limit and was cancelled.",
    "55P03": "A row or table lock was not granted in time.",
    "40001": "The transaction conflicted with another one and was rolled back.",
    "40P01": "The transaction deadlocked with another one and was rolled back.",
    "57P01": "The database server is shutting down.",
    "57P02": "The database server is restarting.",
    "57P03": "The database server is starting up.",
    "53300": "The database has no free connection slot.",
}


#: The reasons that mean every pooled connection is likely dead (the server went away).
DISCONNECTED = frozenset({
    "The connection to the database was lost.", "The database is not reachable.",
    "The database server is shutting down.", "The database server is restarting.",
})


def unavailable(error: BaseException) -> str | None:
    """Why ``error`` means the database cannot answer now, or None when it is not that."""
    if isinstance(error, PoolTimeout):
        return "No database connection was free in time: the server is busy."
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return "The connection to the database was lost."
        return None if error.orig is None else _driver_error(error.orig)
    # Raised straight by the driver (tablerest sends BEGIN to it without SQLAlchemy).
    return _driver_error(error)


def _driver_error(error: BaseException) -> str | None:
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        if "database is locked" in message or "database table is locked" in message:
            return "The database is locked by another writer."
        if message == "interrupted":  # the statement clock ran out (database.py)
            return _RETRYABLE_STATES["57014"]
        return None
    state = getattr(error, "sqlstate", None)
    if state in _RETRYABLE_STATES:
        return _RETRYABLE_STATES[state]
    if isinstance(error, psycopg.OperationalError) and (state is None
                                                        or state.startswith("08")):
        return "The database is not reachable."
    return None
