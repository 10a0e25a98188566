"""PostgreSQL for the benchmark: the test suite's throwaway server, the data loaded once.

The server is ``tests/pgserver.py``'s ``PostgresServer`` (imported, not copied): a fresh
cluster on a free port of 127.0.0.1, removed when the run ends. Its durability is switched off
for speed (``fsync``, ``synchronous_commit``); every app writes to the same server, so they are
compared with the same durability. The schema is made by the microblog's own migrations, the
rows are copied from the SQLite data set, and each app gets a database of its own, cloned from
that one (``CREATE DATABASE ... TEMPLATE``), so every run starts from the same state.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

from . import BenchmarkError

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "bench_source"
_TABLES = {
    "users": ("id", "name", "email", "password", "created_at", "updated_at"),
    "messages": ("id", "content", "user_id", "created_at", "updated_at"),
    "follows": ("id", "follower_id", "followed_id", "created_at", "updated_at"),
}


def start_server() -> Any:
    """A started ``PostgresServer`` (tests/pgserver.py); the caller stops it."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    try:
        from pgserver import PostgresServer, PostgresServerError
    except ImportError as error:
        raise BenchmarkError(f"tests/pgserver.py cannot be imported: {error}") from error
    try:
        server = PostgresServer()
        server.start()
    except PostgresServerError as error:
        raise BenchmarkError(f"The PostgreSQL server could not start: {error}") from error
    return server


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def load(server: Any, source: Path, microblog_dir: Path) -> None:
    """Create the source database: the microblog's migrations, then the SQLite rows."""
    import psycopg

    url = server.create_database(SOURCE)
    _migrate(url, microblog_dir)
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        with psycopg.connect(_conninfo(url), options="-c timezone=UTC") as connection, \
                connection.cursor() as cursor:
            for table, columns in _TABLES.items():
                names = ", ".join(columns)
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in reader.execute(f"SELECT {names} FROM {table} ORDER BY id"):
                        copy.write_row(row)
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))")
    finally:
        reader.close()
    with psycopg.connect(_conninfo(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def _migrate(url: str, microblog_dir: Path) -> None:
    if str(microblog_dir) not in sys.path:
        sys.path.insert(0, str(microblog_dir))
    from microblog.app import create_app

    from tablerest.extension import state_of
    from tablerest.migrations import Migrations, upgrade

    app = create_app({"DATABASE_URL": url, "TABLEREST_SECRET_KEY": "benchmark-migrations-only"})
    try:
        upgrade(Migrations.for_app(app))
    finally:
        state_of(app).engine.dispose()


def clone(server: Any, name: str) -> str:
    """A new database ``name``, a copy of the loaded source; its SQLAlchemy URL."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(_conninfo(server.url()), autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(SOURCE)))
    url: str = server.url(name)
    return url
