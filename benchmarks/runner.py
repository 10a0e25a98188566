"""``python -m benchmarks``: the microblog against two floors, on SQLite and PostgreSQL, with
1 and 2 gunicorn workers; prints one table of req/s, p99 and ratios.

For each engine and worker count, the three apps (the raw WSGI floor, the Flask floor, the
microblog) are served at once, each on a database of its own holding the same data, and driven
in turn: every pass runs each endpoint on each app back to back (the order rotating from pass
to pass), so that the noise of a shared machine falls on all three alike. A ratio is taken
within each pass and the table shows the median.

Exit status: 0 when every selected app was measured (whatever the ratios), 1 when an app
failed its pre-flight check or its run, 2 when the benchmark could not start (no wrk, bad
options).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from . import BenchmarkError
from .client import Answer, Endpoint, check, endpoints, tablerest_token
from .compare import differences
from .data import PASSWORD, BenchUser, Sizes, cached_database, fresh_copy, typical_user
from .floor_sql import floor_token
from .report import Cell, failure_notes, table
from .server import AppSpec, log_tail, serve_process, worker_cpu_seconds
from .wrk import INSTALL_HINT, WrkOptions, WrkResult, executable, run

ROOT = Path(__file__).resolve().parent.parent
MICROBLOG_DIR = ROOT / "examples" / "microblog"
TOKEN_TTL = 3600
APPS = ("raw", "flask", "tablerest")
ENGINES = ("sqlite", "postgresql")
ENDPOINT_KEYS = ("item", "list", "followers", "post")
_DESCRIPTIONS = {
    "raw": "raw WSGI floor (a bare WSGI callable + driver + orjson)",
    "flask": "Flask floor (Flask + driver + orjson)",
    "tablerest": "tablerest (the microblog)",
}


@dataclass
class AppRun:
    """What one app measured in one group: results per endpoint, one per pass."""

    results: dict[str, list[WrkResult]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # workers' CPU s per request
    answers: dict[str, Answer] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Plan:
    user: BenchUser
    password_hash: str
    endpoints: list[Endpoint]
    apps: tuple[str, ...]
    duration: int
    warmup: int
    passes: int
    server_cpu: int | None
    wrk: WrkOptions
    secret_key: str
    workdir: Path
    microblog_dir: Path
    sqlite_synchronous: str = "NORMAL"


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _cpu(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a CPU number, got {raw!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a CPU number (0 or more), got {value}")
    return value


def _choices(allowed: Sequence[str]) -> Callable[[str], tuple[str, ...]]:
    def parse(raw: str) -> tuple[str, ...]:
        chosen = tuple(part.strip() for part in raw.split(",") if part.strip())
        unknown = [part for part in chosen if part not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {', '.join(allowed)}, got {raw!r}")
        return tuple(name for name in allowed if name in chosen)  # in the table's order
    return parse


def _worker_counts(raw: str) -> tuple[int, ...]:
    try:
        counts = sorted({int(part) for part in raw.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected worker counts such as 1,2, got {raw!r}") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"expected worker counts of 1 or more, got {raw!r}")
    return tuple(counts)


def parser() -> argparse.ArgumentParser:
    sizes = Sizes()
    cli = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the tablerest microblog against a raw WSGI floor and a Flask "
                    "floor, on SQLite and PostgreSQL.",
    )
    cli.add_argument("--engines", type=_choices(ENGINES), default=ENGINES,
                     help="comma-separated: sqlite,postgresql (default: both)")
    cli.add_argument("--workers", type=_worker_counts, default=(1, 2),
                     help="gunicorn sync worker counts, comma-separated (default: 1,2)")
    cli.add_argument("--apps", type=_choices(APPS), default=APPS,
                     help="comma-separated: raw,flask,tablerest (default: all three)")
    cli.add_argument("--endpoints", type=_choices(ENDPOINT_KEYS), default=ENDPOINT_KEYS,
                     help="comma-separated: item,list,followers,post (default: all four)")
    cli.add_argument("--duration", type=_positive, default=5, metavar="SECONDS",
                     help="length of each measured wrk run (default: 5)")
    cli.add_argument("--warmup", type=_positive, default=1, metavar="SECONDS",
                     help="unmeasured wrk run before an app's first pass (default: 1)")
    cli.add_argument("--passes", type=_positive, default=2,
                     help="measured runs of each endpoint on each app, interleaved (default: 2)")
    cli.add_argument("--connections", type=_positive, default=8,
                     help="wrk connections (default: 8)")
    cli.add_argument("--users", type=_positive, default=sizes.users)
    cli.add_argument("--messages", type=_positive, default=sizes.messages)
    cli.add_argument("--follows", type=_positive, default=sizes.follows)
    cli.add_argument("--server-cpu", type=_cpu, default=0,
                     help="core a 1-worker gunicorn is pinned to (default: 0); more workers "
                          "run unpinned")
    cli.add_argument("--wrk-cpu", type=_cpu, default=1, help="core wrk is pinned to (default: 1)")
    cli.add_argument("--sqlite-synchronous", choices=("NORMAL", "FULL"), default="NORMAL",
                     help="SQLite durability for every app: NORMAL survives a process crash, "
                          "FULL a power loss (default: NORMAL)")
    cli.add_argument("--microblog-dir", type=Path, default=MICROBLOG_DIR,
                     help="directory holding the microblog package (default: examples/microblog)")
    return cli


def _pinning(server_cpu: int, wrk_cpu: int) -> tuple[int | None, int | None]:
    """The cores to pin to, or (None, None) with a warning when pinning is impossible."""
    available = os.sched_getaffinity(0)
    if shutil.which("taskset") is None:
        _progress("warning: taskset is not installed (util-linux); running unpinned.")
        return None, None
    if server_cpu == wrk_cpu or not {server_cpu, wrk_cpu} <= available:
        _progress(
            f"warning: cannot pin gunicorn to CPU {server_cpu} and wrk to CPU {wrk_cpu}"
            f" (available: {sorted(available)}); running unpinned, numbers will be noisier."
        )
        return None, None
    return server_cpu, wrk_cpu


def _tablerest_missing(microblog_dir: Path) -> str | None:
    """Why the microblog cannot be served, or None when it can."""
    if not (microblog_dir / "microblog" / "app.py").is_file():
        return f"{microblog_dir / 'microblog' / 'app.py'} does not exist yet"
    if importlib.util.find_spec("tablerest") is None:
        return "the tablerest package is not importable here (run `pip install -e .`)"
    return None


def _spec(app: str, plan: Plan) -> AppSpec:
    if app == "raw":
        return AppSpec("raw", ROOT, "benchmarks.raw_app:create_app()")
    if app == "flask":
        return AppSpec("flask", ROOT, "benchmarks.floor_app:create_app()")
    return AppSpec("tablerest", plan.microblog_dir, "microblog.app:create_app()")


def _token(app: str, plan: Plan, base_url: str) -> str:
    if app == "tablerest":
        return tablerest_token(base_url, plan.user.name, PASSWORD)
    return floor_token(plan.secret_key, plan.user.id, plan.password_hash)


@dataclass
class _Served:
    app: str
    base_url: str
    token: str
    log: IO[bytes]
    directory: Path
    pid: int


def _database_url(engine: str, app: str, plan: Plan, directory: Path, server: Any,
                  workers: int) -> str:
    if engine == "sqlite":
        return f"sqlite:///{fresh_copy(plan.workdir / 'source.db', directory)}"
    from .postgres import clone

    return str(clone(server, f"bench_{app}_{workers}w"))


@contextlib.contextmanager
def _serve_all(engine: str, workers: int, plan: Plan, server: Any,
               runs: dict[str, AppRun]) -> Iterator[list[_Served]]:
    """Serve every app that starts and passes its checks; the others get their error."""
    with contextlib.ExitStack() as stack:
        served: list[_Served] = []
        for app in plan.apps:
            directory = plan.workdir / f"{engine}-{workers}w-{app}"
            directory.mkdir()
            log = stack.enter_context(open(directory / "gunicorn.log", "w+b"))
            outcome = runs[app]
            try:
                url = _database_url(engine, app, plan, directory, server, workers)
                env = {
                    "DATABASE_URL": url,
                    "TABLEREST_SECRET_KEY": plan.secret_key,
                    "TABLEREST_TOKEN_TTL": str(TOKEN_TTL),
                    "TABLEREST_SQLITE_SYNCHRONOUS": plan.sqlite_synchronous,
                }
                cpu = plan.server_cpu if workers == 1 else None
                base_url, process = stack.enter_context(
                    serve_process(_spec(app, plan), env, cpu, log, workers=workers))
                token = _token(app, plan, base_url)
                for endpoint in plan.endpoints:
                    outcome.answers[endpoint.label] = check(base_url, endpoint, token)
            except BenchmarkError as error:
                outcome.error = f"{error}\ngunicorn's log ends with:\n{log_tail(log)}"
                continue
            served.append(_Served(app, base_url, token, log, directory, process.pid))
        yield served


def measure_group(engine: str, workers: int, plan: Plan, server: Any) -> dict[str, AppRun]:
    """Every app on ``engine`` with ``workers`` workers, the passes interleaved."""
    runs = {app: AppRun() for app in plan.apps}
    with _serve_all(engine, workers, plan, server, runs) as served:
        failed: set[str] = set()
        for number in range(plan.passes):
            for endpoint in plan.endpoints:
                shift = number % max(len(served), 1)
                for entry in served[shift:] + served[:shift]:
                    if entry.app in failed:
                        continue
                    try:
                        if number == 0:
                            run(entry.base_url, endpoint, entry.token, plan.warmup, plan.wrk,
                                entry.directory)
                        before = worker_cpu_seconds(entry.pid)
                        result = run(entry.base_url, endpoint, entry.token, plan.duration,
                                     plan.wrk, entry.directory)
                        used = worker_cpu_seconds(entry.pid) - before
                    except BenchmarkError as error:
                        runs[entry.app].error = (
                            f"{error}\ngunicorn's log ends with:\n{log_tail(entry.log)}")
                        failed.add(entry.app)
                        continue
                    runs[entry.app].results.setdefault(endpoint.label, []).append(result)
                    per_request = used / max(result.requests, 1)
                    runs[entry.app].cpu.setdefault(endpoint.label, []).append(per_request)
                    _progress(
                        f"  {engine:<10} {workers}w pass {number + 1}  {entry.app:<9}"
                        f" {endpoint.label:<27} {result.requests_per_second:>8,.0f} req/s"
                        f"  p99 {result.p99_seconds * 1000:7.2f} ms"
                        f"  {per_request * 1e6:6.0f} µs CPU/request")
    return runs


def _password_hash(source: Path, user_id: int) -> str:
    connection = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        row = connection.execute("SELECT password FROM users WHERE id = ?", (user_id,)).fetchone()
    finally:
        connection.close()
    return str(row[0])


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if executable() is None:
        _progress(INSTALL_HINT)
        return 2
    sizes = Sizes(users=args.users, messages=args.messages, follows=args.follows)
    try:
        sizes.validate()
    except ValueError as error:
        _progress(str(error))
        return 2
    apps: tuple[str, ...] = args.apps
    if "tablerest" in apps:
        missing = _tablerest_missing(args.microblog_dir)
        if missing is not None:
            _progress(f"tablerest: not available ({missing})")
            apps = tuple(app for app in apps if app != "tablerest")
    server_cpu, wrk_cpu = _pinning(args.server_cpu, args.wrk_cpu)

    started = time.monotonic()
    source = cached_database(sizes)
    user = typical_user(source, sizes)
    _progress(
        f"data: {sizes.users:,} users, {sizes.messages:,} messages, {sizes.follows:,} follows"
        f" ({source.name}, ready in {time.monotonic() - started:.1f} s);"
        f" measuring on user {user.id} ({user.followers} followers)"
    )
    for app in apps:
        _progress(f"  {app}: {_DESCRIPTIONS[app]}")

    import secrets

    chosen = [endpoint for endpoint in endpoints(user.id) if endpoint.key in args.endpoints]
    results: dict[Cell, dict[str, AppRun]] = {}
    with tempfile.TemporaryDirectory(prefix="tablerest-bench-") as workdir:
        shutil.copyfile(source, Path(workdir) / "source.db")
        plan = Plan(
            user=user, password_hash=_password_hash(source, user.id), endpoints=chosen,
            apps=apps, duration=args.duration, warmup=args.warmup, passes=args.passes,
            server_cpu=server_cpu, wrk=WrkOptions(connections=args.connections, cpu=wrk_cpu),
            secret_key=secrets.token_urlsafe(32), workdir=Path(workdir),
            microblog_dir=args.microblog_dir, sqlite_synchronous=args.sqlite_synchronous,
        )
        for engine in args.engines:
            server = None
            try:
                if engine == "postgresql":
                    from .postgres import load, start_server

                    _progress("postgresql: starting the throwaway server, loading the data")
                    server = start_server()
                    load(server, source, args.microblog_dir)
                for workers in args.workers:
                    _progress(f"{engine}, {workers} worker{'s' if workers > 1 else ''}:")
                    results[Cell(engine, workers)] = measure_group(engine, workers, plan,
                                                                   server)
            except BenchmarkError as error:
                _progress(f"{engine}: FAILED: {error}")
                results[Cell(engine, 0)] = {app: AppRun(error=str(error)) for app in apps}
            finally:
                if server is not None:
                    server.stop()
    elapsed = time.monotonic() - started
    _print_report(plan, results, args, elapsed)
    failed = any(outcome.error for group in results.values() for outcome in group.values())
    return 1 if failed else 0


def _print_report(plan: Plan, results: dict[Cell, dict[str, AppRun]],
                  args: argparse.Namespace, elapsed: float) -> None:
    pinning = (
        f"1 worker on CPU {plan.server_cpu}, 2+ workers unpinned, wrk on CPU {plan.wrk.cpu}"
        if plan.server_cpu is not None else "unpinned"
    )
    print()  # noqa: T201
    print(  # noqa: T201
        f"{plan.passes} interleaved passes of {args.duration} s per endpoint and app"
        f" ({args.warmup} s warm-up first), wrk -t1 -c{plan.wrk.connections}, gunicorn sync"
        f" workers, {pinning}; {os.cpu_count()} CPUs; {elapsed / 60:.1f} min in all."
        " req/s and p99: medians of the passes; ratios: medians of the per-pass ratios."
    )
    labels = [endpoint.label for endpoint in plan.endpoints]
    grouped = {cell: {app: run.results for app, run in group.items()}
               for cell, group in results.items() if cell.workers}
    cpu = {cell: {app: run.cpu for app, run in group.items()}
           for cell, group in results.items() if cell.workers}
    print(table(labels, grouped, cpu))  # noqa: T201
    print(  # noqa: T201
        "CPU/req: the gunicorn workers' user + system CPU per answered request (/proc), which"
        " other load on the machine barely moves; CPU ratio: the raw floor's over tablerest's.")
    notes = []
    for cell, group in results.items():
        where = f"{cell.engine}, {cell.workers}w"
        for app, outcome in group.items():
            if outcome.error:
                notes.append(f"{where} {app}: FAILED: {outcome.error}")
            notes += failure_notes(f"{where} {app}", {
                label: result for label, runs in outcome.results.items() for result in runs})
        theirs = group.get("tablerest")
        for floor in ("raw", "flask"):
            ours = group.get(floor)
            if ours is None or theirs is None:
                continue
            for endpoint in plan.endpoints:
                mine, other = ours.answers.get(endpoint.label), theirs.answers.get(endpoint.label)
                if mine is not None and other is not None:
                    notes += [f"{where}: answers differ ({floor} floor vs tablerest) on"
                              f" {endpoint.label}: {difference}"
                              for difference in differences(endpoint, mine, other)]
    if notes:
        print()  # noqa: T201
    for note in notes:
        print(note)  # noqa: T201


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
