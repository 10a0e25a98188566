"""``python -m benchmarks.counts``: a list page costs the same on 10,000 and 10,000,000 rows.

The microblog (its schema made by its own migrations) is filled with ``--small`` and
``--large`` messages (``generate_series`` on a throwaway PostgreSQL server, the test suite's
``tests/pgserver.py``; a recursive CTE on SQLite), then ``VACUUM ANALYZE``/``ANALYZE``. Each
page is asked of the app through WSGI (Flask's test client, in this process: no network, no
server) and the table gives the median time per request and the ratio large ÷ small. Target:
the default first page and page 1,000 by cursor cost at most 2x on the large table.

Rows, for both sizes:

- the first page with the default count (``estimated``: exact up to
  ``TABLEREST_COUNT_EXACT_UP_TO``, 10,000, else the planner's or ANALYZE's estimate);
- the same with ``count=none`` (no count at all) and ``count=exact`` (what every list did
  before: ``COUNT(*)`` of the whole table);
- page 1,000 by cursor at ``limit=10`` (on 10,000 messages, the last page), found by following
  ``next`` from the first page, with the default count.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from flask import Flask
from flask.testing import FlaskClient

from . import BenchmarkError
from .report import aligned

ROOT = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret-key-0123456789"
USERS = 1000
CHUNK = 1_000_000
DEEP_PAGE = 1000
DEEP_LIMIT = 10
#: Requests in a row on one size before the other size's turn.
ROUND = 10
#: 2024-01-01T00:00:00Z plus one second a message.
EPOCH = "2024-01-01 00:00:00"


@dataclass(frozen=True)
class Case:
    label: str
    url: str | None  # None: the deep page, found by following ``next``
    repeat: int  # requests timed on the large table (the small one gets the same)


@dataclass
class Timing:
    median_ms: float
    count: Any
    kind: Any


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201


def _microblog(url: str) -> Flask:
    example = str(ROOT / "examples" / "microblog")
    if example not in sys.path:
        sys.path.insert(0, example)
    from microblog.app import create_app

    from tablerest.migrations import Migrations, upgrade

    app = create_app({"DATABASE_URL": url, "TABLEREST_SECRET_KEY": SECRET})
    upgrade(Migrations.for_app(app))
    return app


# -- filling -----------------------------------------------------------------------------------


def fill_postgres(dsn: str, messages: int) -> None:
    """``USERS`` users and ``messages`` messages, a million at a time, then VACUUM ANALYZE."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO users (id, name, email, password, created_at, updated_at) "
            "SELECT i, 'user' || i, 'user' || i || '@example.com', 'not-a-hash', "
            "timestamptz '2023-01-01 00:00:00+00', timestamptz '2023-01-01 00:00:00+00' "
            "FROM generate_series(1, %s) i", (USERS,))
        for low in range(1, messages + 1, CHUNK):
            high = min(low + CHUNK - 1, messages)
            connection.execute(
                "INSERT INTO messages (id, content, user_id, created_at, updated_at) "
                "SELECT i, 'message number ' || i, 1 + i %% %s, t, t FROM ("
                "SELECT i, timestamptz '" + EPOCH + "+00' + i * interval '1 second' AS t "
                "FROM generate_series(%s::bigint, %s::bigint) i) s", (USERS, low, high))
            _progress(f"  postgresql: {high:,} of {messages:,} messages")
        _progress("  postgresql: VACUUM ANALYZE")
        connection.execute("VACUUM ANALYZE")


def fill_sqlite(path: Path, messages: int) -> None:
    """The same rows on SQLite (datetimes as SQLAlchemy stores them), then ANALYZE."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")
        stamp = "strftime('%Y-%m-%d %H:%M:%S', '" + EPOCH + "', '+' || i || ' seconds')"
        connection.execute(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?) "
            "INSERT INTO users (id, name, email, password, created_at, updated_at) "
            "SELECT i, 'user' || i, 'user' || i || '@example.com', 'not-a-hash', "
            "'2023-01-01 00:00:00.000000', '2023-01-01 00:00:00.000000' FROM seq", (USERS,))
        for low in range(1, messages + 1, CHUNK):
            high = min(low + CHUNK - 1, messages)
            connection.execute(
                "WITH RECURSIVE seq(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM seq "
                "WHERE i < ?) INSERT INTO messages (id, content, user_id, created_at, "
                f"updated_at) SELECT i, 'message number ' || i, 1 + i % ?, {stamp} || "
                f"'.000000', {stamp} || '.000000' FROM seq", (low, high, USERS))
            connection.commit()
            _progress(f"  sqlite: {high:,} of {messages:,} messages")
        _progress("  sqlite: ANALYZE")
        connection.execute("ANALYZE")
        connection.commit()
    finally:
        connection.close()


# -- timing ------------------------------------------------------------------------------------


def get(client: FlaskClient, url: str) -> dict[str, Any]:
    response = client.get(url)
    if response.status_code != 200:
        raise BenchmarkError(f"GET {url} answered {response.status_code}: "
                             f"{response.get_data(as_text=True)[:300]}")
    body: dict[str, Any] = response.get_json()
    return body


def deep_page(client: FlaskClient) -> str:
    """The URL of page ``DEEP_PAGE`` at ``DEEP_LIMIT``, by following ``next``."""
    url = f"/messages?limit={DEEP_LIMIT}"
    for _ in range(DEEP_PAGE - 1):
        found = get(client, url)["next"]
        if found is None:
            raise BenchmarkError(f"The list ends before page {DEEP_PAGE}.")
        url = found
    return url


def _once(client: FlaskClient, url: str) -> float:
    start = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise BenchmarkError(f"GET {url} answered {response.status_code}.")
    return elapsed


def compare(apps: Sequence[Flask], chosen: Sequence[Case]) -> list[list[Timing]]:
    """Each case on each app, timed in alternating rounds (so that whatever else the machine
    does weighs on both sizes alike): one list of timings per app."""
    clients = [app.test_client() for app in apps]
    urls = [[case.url or deep_page(client) for case in chosen] for client in clients]
    found: list[list[Timing]] = [[] for _ in apps]
    for index, case in enumerate(chosen):
        times: list[list[float]] = [[] for _ in apps]
        bodies = [get(client, urls[n][index]) for n, client in enumerate(clients)]
        for _ in range(max(2, min(20, case.repeat // 5))):  # warm-up
            for n, client in enumerate(clients):
                _once(client, urls[n][index])
        rounds = max(1, case.repeat // ROUND)
        for _ in range(rounds):
            for n, client in enumerate(clients):
                times[n] += [_once(client, urls[n][index])
                             for _ in range(min(ROUND, case.repeat))]
        for n, body in enumerate(bodies):
            found[n].append(Timing(statistics.median(times[n]), body["count"],
                                   body["count_kind"]))
    return found


def cases(repeat: int) -> list[Case]:
    return [
        Case("first page (default count)", "/messages", repeat),
        Case("first page, count=none", "/messages?count=none", repeat),
        Case("first page, count=exact", "/messages?count=exact", max(3, repeat // 40)),
        Case(f"page {DEEP_PAGE:,} by cursor, limit={DEEP_LIMIT}", None, repeat),
    ]


def rows_of(engine: str, small: list[Timing], large: list[Timing],
            chosen: Sequence[Case]) -> list[list[str]]:
    table = []
    for case, few, many in zip(chosen, small, large, strict=True):
        table.append([
            f"{engine}: {case.label}",
            f"{few.median_ms:.2f}", _count(few), f"{many.median_ms:.2f}", _count(many),
            f"{many.median_ms / few.median_ms:.2f}x",
        ])
    return table


def _count(timing: Timing) -> str:
    if timing.count is None:
        return "null"
    return f"{timing.count:,} ({timing.kind})"


# -- engines -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _postgres() -> Iterator[Any]:
    from tests.pgserver import PostgresServer  # the suite's throwaway server

    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run_postgres(sizes: tuple[int, int], chosen: Sequence[Case]) -> list[list[str]]:
    apps = []
    with _postgres() as server:
        for size in sizes:
            _progress(f"PostgreSQL, {size:,} messages:")
            url = server.create_database(f"counts_{size}")
            apps.append(_microblog(url))
            fill_postgres(url.replace("postgresql+psycopg://", "postgresql://"), size)
        _progress("PostgreSQL: measuring")
        small, large = compare(apps, chosen)
    return rows_of("postgresql", small, large, chosen)


def run_sqlite(sizes: tuple[int, int], chosen: Sequence[Case]) -> list[list[str]]:
    apps = []
    with tempfile.TemporaryDirectory(prefix="tablerest-counts-") as directory:
        for size in sizes:
            _progress(f"SQLite, {size:,} messages:")
            path = Path(directory) / f"counts_{size}.db"
            apps.append(_microblog(f"sqlite:///{path}"))
            fill_sqlite(path, size)
        _progress("SQLite: measuring")
        small, large = compare(apps, chosen)
    return rows_of("sqlite", small, large, chosen)


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m benchmarks.counts", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--small", type=int, default=10_000, help="messages (default 10,000)")
    cli.add_argument("--large", type=int, default=10_000_000,
                     help="messages (default 10,000,000)")
    cli.add_argument("--repeat", type=int, default=200,
                     help="timed requests per row (count=exact: a fortieth)")
    cli.add_argument("--engine", choices=("postgresql", "sqlite", "both"), default="both")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.small < DEEP_PAGE * DEEP_LIMIT:
        raise SystemExit(f"--small must be at least {DEEP_PAGE * DEEP_LIMIT:,} (page "
                         f"{DEEP_PAGE:,} at limit={DEEP_LIMIT}).")
    sizes = (args.small, args.large)
    chosen = cases(args.repeat)
    runs: list[Callable[[tuple[int, int], Sequence[Case]], list[list[str]]]] = []
    if args.engine in ("postgresql", "both"):
        runs.append(run_postgres)
    if args.engine in ("sqlite", "both"):
        runs.append(run_sqlite)
    table: list[list[str]] = []
    try:
        for run in runs:
            table += run(sizes, chosen)
    except BenchmarkError as exc:
        _progress(f"error: {exc}")
        return 1
    head = ["median ms per request", f"{args.small:,}", "count", f"{args.large:,}", "count",
            "large ÷ small"]
    print(aligned(head, table))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
