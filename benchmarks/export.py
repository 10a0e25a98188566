"""``python -m benchmarks.export``: stream 1,000,000 messages as NDJSON, in flat memory.

The microblog is served by gunicorn (one sync worker, as ``python -m benchmarks`` does it) on
a copy of its data with 1,000,000 messages, built once under ``benchmarks/.data/``. A client
sends ``GET /messages`` with ``Accept: application/x-ndjson`` (no limit: every message, newest
first) and writes the body to a file as it arrives. Measured: the time to the last byte, and
the worker's peak resident memory (``VmHWM`` in ``/proc/<pid>/status``) before and after.

The floor is a plain loop over the same file: ``sqlite3`` runs the same query, ``orjson``
writes each row as the same JSON line to a file; both outputs must be the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.request import Request, urlopen

import orjson

from . import BenchmarkError
from .data import Sizes, cached_database, fresh_copy
from .floor_app import iso_utc
from .report import aligned
from .server import AppSpec, serve

ROOT = Path(__file__).resolve().parent.parent
MICROBLOG = AppSpec("microblog", ROOT / "examples" / "microblog", "microblog.app:create_app()")
NDJSON = "application/x-ndjson"
CHUNK = 1 << 20
RSS_LIMIT_MB = 150
SPEED_FLOOR = 0.5
# The microblog's messages list: its visible fields, in its default order.
QUERY = ("SELECT id, content, user_id, created_at, updated_at FROM messages"
         " ORDER BY created_at DESC, id")


@dataclass(frozen=True)
class Output:
    seconds: float
    size: int
    digest: str


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201


def floor(path: Path, target: Path, batch: int = 1000) -> Output:
    """The same NDJSON, written by a plain sqlite3 + orjson loop."""
    started = time.perf_counter()
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        cursor = connection.execute(QUERY)
        with open(target, "wb") as out:
            while rows := cursor.fetchmany(batch):
                out.write(b"".join([orjson.dumps({
                    "id": row[0], "content": row[1], "user_id": row[2],
                    "created_at": iso_utc(row[3]), "updated_at": iso_utc(row[4]),
                }) + b"\n" for row in rows]))
    finally:
        connection.close()
    return Output(time.perf_counter() - started, *_summary(target))


def download(url: str, target: Path) -> Output:
    """GET ``url`` as NDJSON, writing the body to ``target`` as it arrives."""
    started = time.perf_counter()
    request = Request(url, headers={"Accept": NDJSON})
    with urlopen(request, timeout=600) as response, open(target, "wb") as out:
        if response.status != 200 or response.headers.get_content_type() != NDJSON:
            raise BenchmarkError(f"GET {url} answered {response.status} "
                                 f"{response.headers.get('Content-Type')!r}")
        while chunk := response.read(CHUNK):
            out.write(chunk)
    return Output(time.perf_counter() - started, *_summary(target))


def _summary(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        while chunk := data.read(CHUNK):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def worker_pid(base_url: str) -> int:
    """The gunicorn worker serving ``base_url``: the forked child of the master bound there."""
    bind = base_url.removeprefix("http://")
    serving = [int(entry.name) for entry in Path("/proc").iterdir()
               if entry.name.isdigit() and f"-b {bind}" in _cmdline(int(entry.name))]
    workers = [pid for pid in serving if _parent(pid) in serving]
    if len(workers) != 1:
        raise BenchmarkError(f"Expected one gunicorn worker on {bind}, found {workers}.")
    return workers[0]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise BenchmarkError(f"/proc/{pid}/status has no VmHWM line.")


def main(argv: Sequence[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python -m benchmarks.export", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--messages", type=int, default=1_000_000)
    args = cli.parse_args(argv)
    sizes = Sizes(messages=args.messages)
    started = time.perf_counter()
    source = cached_database(sizes)
    _progress(f"data: {sizes.messages:,} messages ({source.name}, ready in "
              f"{time.perf_counter() - started:.1f} s)")
    with tempfile.TemporaryDirectory() as workdir, \
            open(Path(workdir) / "gunicorn.log", "w+b") as log:
        work = Path(workdir)
        copy = fresh_copy(source, work)
        _progress("floor: sqlite3 + orjson to a file")
        plain = floor(copy, work / "floor.ndjson")
        (work / "floor.ndjson").unlink()
        # A long export must not look like a stuck worker to gunicorn's arbiter.
        env = {"DATABASE_URL": f"sqlite:///{copy}", "TABLEREST_SECRET_KEY": os.urandom(24).hex(),
               "GUNICORN_CMD_ARGS": "--timeout 600"}
        try:
            with serve(MICROBLOG, env, None, log, timeout=60) as base:
                pid = worker_pid(base)
                download(f"{base}/messages?limit=10", work / "warm.ndjson")
                before = peak_rss_mb(pid)
                _progress("tablerest: GET /messages as NDJSON over HTTP, to a file")
                streamed = download(f"{base}/messages", work / "tablerest.ndjson")
                after = peak_rss_mb(pid)
        except BenchmarkError as error:
            _progress(f"error: {error}")
            return 1
    same = (plain.size, plain.digest) == (streamed.size, streamed.digest)
    speed = plain.seconds / streamed.seconds
    rows = [
        ("floor: sqlite3 + orjson loop to a file", f"{plain.seconds:.2f} s",
         f"{plain.size / plain.seconds / 1e6:.0f} MB/s", "", ""),
        ("tablerest: NDJSON over HTTP to a file", f"{streamed.seconds:.2f} s",
         f"{streamed.size / streamed.seconds / 1e6:.0f} MB/s",
         f"{speed:.2f} {'✓' if speed >= SPEED_FLOOR else '✗'}",
         f"{before:.0f} -> {after:.0f} MB {'✓' if after < RSS_LIMIT_MB else '✗'}"),
    ]
    head = ("export of every message", "time", "rate", "speed vs floor", "worker peak RSS")
    print(f"{sizes.messages:,} messages, {plain.size / 1e6:.0f} MB of NDJSON, SQLite, one "  # noqa: T201
          f"gunicorn sync worker; the same bytes: {'yes' if same else 'NO'}")
    print(aligned(head, rows))  # noqa: T201
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
