"""``python -m benchmarks.keyset``: a deep page by cursor costs what page 1 costs; by offset not.

The microblog is served by gunicorn (one sync worker, as ``python -m benchmarks`` does it) on
a copy of its data with 1,000,000 messages, built once under ``benchmarks/.data/``. For each
list, the table gives the median time a client waits for page 1, for page 10,000 by cursor
and for page 10,000 by offset (limit 100, ``count=false``: counting scans the whole table
whatever the page, see the last row).

The cursor of page 10,000 is made as the server makes it (same key, list and sort) from the
last row of page 9,999, and the page it returns is checked against the same page by offset.
The microblog indexes ``messages.created_at``, its default order (newest first); the last
list sorts by a column without an index, so every page, first or deep, sorts the table.
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import urlopen

import orjson

from tablerest.cursors import Cursors

from . import BenchmarkError
from .data import Sizes, cached_database, fresh_copy
from .report import aligned
from .server import AppSpec, serve

ROOT = Path(__file__).resolve().parent.parent
MICROBLOG = AppSpec("microblog", ROOT / "examples" / "microblog", "microblog.app:create_app()")
LIMIT = 100
PAGE = 10_000
TIMEOUT = 300  # seconds: an offset deep into an unindexed order takes a while


@dataclass(frozen=True)
class Variant:
    label: str
    query: dict[str, str]
    order_sql: str  # the same order, for the row that ends the previous page
    sort: tuple[tuple[str, bool], ...]  # as the server's cursors record it
    count: bool = False


VARIANTS = [
    Variant("by key (?sort=id)", {"sort": "id"}, "id", (("id", False),)),
    Variant("newest first (default sort)", {}, "created_at DESC, id",
            (("created_at", True), ("id", False))),
    Variant("oldest first (?sort=created_at)", {"sort": "created_at"}, "created_at, id",
            (("created_at", False), ("id", False))),
    Variant("newest first, and count", {}, "created_at DESC, id",
            (("created_at", True), ("id", False)), count=True),
    Variant("last edited first (?sort=-updated_at), no index", {"sort": "-updated_at"},
            "updated_at DESC, id", (("updated_at", True), ("id", False))),
]


@dataclass
class Row:
    label: str
    first: float
    by_cursor: float
    by_offset: float


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201


def _get(url: str) -> list[int]:
    try:
        with urlopen(url, timeout=TIMEOUT) as response:
            body = orjson.loads(response.read())
    except OSError as error:  # HTTP errors too
        raise BenchmarkError(f"GET {url} failed: {error}") from error
    return [item["id"] for item in body["items"]]


def timed(url: str, budget: float, most: int) -> float:
    """The median seconds a GET of ``url`` takes, over as many runs as ``budget`` allows
    (after one run that warms the worker and the page cache)."""
    _get(url)
    start = time.perf_counter()
    _get(url)
    once = time.perf_counter() - start
    runs = max(3, min(most, int(budget / max(once, 1e-6))))
    samples = [once]
    for _ in range(runs - 1):
        start = time.perf_counter()
        _get(url)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def cursor_for(path: Path, variant: Variant, secret: str, page: int) -> str:
    """The cursor the server hands out at the end of page ``page - 1``."""
    columns = ", ".join(name for name, _ in variant.sort)
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = connection.execute(
            f"SELECT {columns} FROM messages ORDER BY {variant.order_sql} LIMIT 1 OFFSET ?",
            ((page - 1) * LIMIT - 1,)).fetchone()
    finally:
        connection.close()
    if row is None:
        raise BenchmarkError(f"The data has fewer than {(page - 1) * LIMIT} messages.")
    return Cursors(secret).dump("/messages", variant.sort, list(row))


def measure(base: str, path: Path, variant: Variant, secret: str, page: int,
            budget: float, most: int) -> Row:
    query = {**variant.query, "limit": str(LIMIT), "count": str(variant.count).lower()}
    first = f"{base}/messages?{urlencode(query)}"
    deep = f"{first}&{urlencode({'cursor': cursor_for(path, variant, secret, page)})}"
    offset = f"{first}&offset={(page - 1) * LIMIT}"
    if _get(deep) != _get(offset):
        raise BenchmarkError(f"{variant.label}: page {page} by cursor and by offset differ.")
    _progress(f"  {variant.label}: page 1, page {page:,} by cursor, by offset")
    return Row(variant.label, timed(first, budget, most), timed(deep, budget, most),
               timed(offset, budget, most))


def table(rows: Sequence[Row], page: int) -> str:
    head = ["list (limit 100)", "page 1", f"page {page:,} by cursor", "ratio",
            f"page {page:,} by offset", "ratio"]
    body = [[row.label, f"{row.first * 1000:,.1f} ms", f"{row.by_cursor * 1000:,.1f} ms",
             f"{row.by_cursor / row.first:.2f} {'✓' if row.by_cursor < 2 * row.first else '✗'}",
             f"{row.by_offset * 1000:,.1f} ms", f"{row.by_offset / row.first:.2f}"]
            for row in rows]
    return aligned(head, body)


def main(argv: Sequence[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python -m benchmarks.keyset", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--messages", type=int, default=1_000_000)
    cli.add_argument("--page", type=int, default=PAGE, help="the deep page (default 10,000)")
    cli.add_argument("--budget", type=float, default=3.0,
                     help="seconds of runs per measurement (at least 3 runs)")
    cli.add_argument("--most", type=int, default=200, help="at most this many runs")
    args = cli.parse_args(argv)
    if args.messages < args.page * LIMIT:
        cli.error(f"--messages must be at least {args.page * LIMIT:,} for page {args.page:,}")
    sizes = Sizes(messages=args.messages)
    started = time.perf_counter()
    source = cached_database(sizes)
    _progress(f"data: {sizes.messages:,} messages ({source.name}, ready in "
              f"{time.perf_counter() - started:.1f} s)")
    secret = secrets.token_urlsafe(32)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as workdir, \
            open(Path(workdir) / "gunicorn.log", "w+b") as log:
        copy = fresh_copy(source, Path(workdir))
        env = {"DATABASE_URL": f"sqlite:///{copy}", "TABLEREST_SECRET_KEY": secret}
        try:
            with serve(MICROBLOG, env, None, log, timeout=60) as base:
                for variant in VARIANTS:
                    rows.append(measure(base, copy, variant, secret, args.page,
                                        args.budget, args.most))
        except BenchmarkError as error:
            _progress(f"error: {error}")
            return 1
    print(f"{sizes.messages:,} messages, SQLite, one gunicorn sync worker; the median time a "  # noqa: T201
          "client waits (limit=100, count=false unless said)")
    print(table(rows, args.page))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
