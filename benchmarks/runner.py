"""``python -m benchmarks``: measure the floor and the microblog in one run, print the table.

Exit status: 0 when every selected app was measured (whatever the ratios), 1 when an app
failed its pre-flight check or its run, 2 when the benchmark could not start (no wrk, bad
options).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import BenchmarkError
from .client import Answer, Endpoint, check, endpoints, floor_token, tablerest_token
from .compare import differences
from .data import PASSWORD, BenchUser, Sizes, cached_database, fresh_copy, typical_user
from .report import failure_notes, table
from .server import AppSpec, log_tail, serve
from .wrk import INSTALL_HINT, WrkOptions, WrkResult, executable, run

ROOT = Path(__file__).resolve().parent.parent
MICROBLOG_DIR = ROOT / "examples" / "microblog"
FLOOR = AppSpec("floor", ROOT, "benchmarks.floor_app:create_app()")
TOKEN_TTL = 3600


@dataclass
class AppRun:
    """What one app's run produced; ``error`` says why it stopped, when it did."""

    results: dict[str, WrkResult] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Plan:
    user: BenchUser
    endpoints: list[Endpoint]
    duration: int
    warmup: int
    server_cpu: int | None
    wrk: WrkOptions
    secret_key: str
    workdir: Path
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


def parser() -> argparse.ArgumentParser:
    sizes = Sizes()
    cli = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the tablerest microblog against a hand-written Flask floor.",
    )
    cli.add_argument("--duration", type=_positive, default=10, metavar="SECONDS",
                     help="length of each measured wrk run (default: 10)")
    cli.add_argument("--warmup", type=_positive, default=2, metavar="SECONDS",
                     help="length of the unmeasured wrk run before each (default: 2)")
    cli.add_argument("--connections", type=_positive, default=8,
                     help="wrk connections (default: 8)")
    cli.add_argument("--only", choices=("floor", "tablerest", "both"), default="both",
                     help="which apps to measure (default: both)")
    cli.add_argument("--users", type=_positive, default=sizes.users)
    cli.add_argument("--messages", type=_positive, default=sizes.messages)
    cli.add_argument("--follows", type=_positive, default=sizes.follows)
    cli.add_argument("--server-cpu", type=_cpu, default=0,
                     help="core gunicorn is pinned to (default: 0)")
    cli.add_argument("--wrk-cpu", type=_cpu, default=1, help="core wrk is pinned to (default: 1)")
    cli.add_argument("--sqlite-synchronous", choices=("NORMAL", "FULL"), default="NORMAL",
                     help="SQLite durability for both apps: NORMAL survives a process crash, "
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


def measure(spec: AppSpec, plan: Plan, get_token: Callable[[str], str]) -> AppRun:
    """Serve ``spec`` on a fresh copy of the data, check each endpoint, then run wrk on it."""
    outcome = AppRun()
    directory = plan.workdir / spec.label
    directory.mkdir()
    database = fresh_copy(plan.workdir / "source.db", directory)
    env = {
        "DATABASE_URL": f"sqlite:///{database}",
        "TABLEREST_SECRET_KEY": plan.secret_key,
        "TABLEREST_TOKEN_TTL": str(TOKEN_TTL),
        "TABLEREST_SQLITE_SYNCHRONOUS": plan.sqlite_synchronous,
    }
    with open(directory / "gunicorn.log", "w+b") as log:
        try:
            with serve(spec, env, plan.server_cpu, log) as base_url:
                try:
                    _drive(spec, plan, get_token(base_url), base_url, directory, outcome)
                except BenchmarkError as error:
                    raise BenchmarkError(
                        f"{error}\ngunicorn's log ends with:\n{log_tail(log)}"
                    ) from error
        except BenchmarkError as error:
            outcome.error = str(error)
    return outcome


def _drive(
    spec: AppSpec, plan: Plan, token: str, base_url: str, directory: Path, outcome: AppRun
) -> None:
    """Check every endpoint once, then warm up and measure each in turn."""
    for endpoint in plan.endpoints:
        outcome.answers[endpoint.label] = check(base_url, endpoint, token)
    for endpoint in plan.endpoints:
        run(base_url, endpoint, token, plan.warmup, plan.wrk, directory)
        result = run(base_url, endpoint, token, plan.duration, plan.wrk, directory)
        outcome.results[endpoint.label] = result
        _progress(
            f"  {spec.label:<9} {endpoint.label:<27}"
            f" {result.requests_per_second:>9,.0f} req/s"
            f"  p99 {result.p99_seconds * 1000:7.2f} ms"
        )


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
    server_cpu, wrk_cpu = _pinning(args.server_cpu, args.wrk_cpu)

    started = time.monotonic()
    source = cached_database(sizes)
    user = typical_user(source, sizes)
    _progress(
        f"data: {sizes.users:,} users, {sizes.messages:,} messages, {sizes.follows:,} follows"
        f" ({source.name}, ready in {time.monotonic() - started:.1f} s);"
        f" measuring on user {user.id} ({user.followers} followers)"
    )

    secret_key = secrets.token_urlsafe(32)
    runs: dict[str, AppRun] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="tablerest-bench-") as workdir:
        shutil.copyfile(source, Path(workdir) / "source.db")
        plan = Plan(
            user=user, endpoints=endpoints(user.id), duration=args.duration, warmup=args.warmup,
            server_cpu=server_cpu, wrk=WrkOptions(connections=args.connections, cpu=wrk_cpu),
            secret_key=secret_key, workdir=Path(workdir),
            sqlite_synchronous=args.sqlite_synchronous,
        )
        if args.only in ("floor", "both"):
            _progress("floor: hand-written Flask + sqlite3 + orjson")
            runs["floor"] = measure(FLOOR, plan, lambda _: floor_token(secret_key, user.id))
        if args.only in ("tablerest", "both"):
            missing = _tablerest_missing(args.microblog_dir)
            if missing is None:
                _progress("tablerest: the microblog")
                microblog = AppSpec("tablerest", args.microblog_dir, "microblog.app:create_app()")
                runs["tablerest"] = measure(
                    microblog, plan, lambda url: tablerest_token(url, user.name, PASSWORD)
                )
            else:
                skipped["tablerest"] = missing

    _print_report(plan, runs, skipped, args)
    return 1 if any(outcome.error for outcome in runs.values()) else 0


def _print_report(
    plan: Plan, runs: dict[str, AppRun], skipped: dict[str, str], args: argparse.Namespace
) -> None:
    labels = [endpoint.label for endpoint in plan.endpoints]
    floor, tablerest = runs.get("floor", AppRun()), runs.get("tablerest", AppRun())
    pinning = (
        f"gunicorn on CPU {plan.server_cpu}, wrk on CPU {plan.wrk.cpu}"
        if plan.server_cpu is not None else "unpinned"
    )
    print()  # noqa: T201
    print(  # noqa: T201
        f"{args.duration} s per endpoint after {args.warmup} s warm-up, wrk -t1"
        f" -c{plan.wrk.connections}, one gunicorn sync worker, {pinning}"
    )
    print(table(labels, floor.results, tablerest.results))  # noqa: T201
    notes = [f"{app}: not available ({why})" for app, why in skipped.items()]
    notes += [f"{app}: FAILED: {outcome.error}" for app, outcome in runs.items() if outcome.error]
    for app, outcome in runs.items():
        notes += failure_notes(app, outcome.results)
    for endpoint in plan.endpoints:
        ours, theirs = floor.answers.get(endpoint.label), tablerest.answers.get(endpoint.label)
        if ours is not None and theirs is not None:
            notes += [
                f"answers differ on {endpoint.label}: {difference}"
                for difference in differences(endpoint, ours, theirs)
            ]
    if notes:
        print()  # noqa: T201
    for note in notes:
        print(note)  # noqa: T201
