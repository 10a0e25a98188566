"""``python -m benchmarks.chaos``: many clients write and read the microblog while a worker is
killed and (on PostgreSQL) the database restarts; nothing acknowledged may be lost or doubled.

Per engine: a fresh database migrated with ``tablerest db upgrade``, the microblog under
gunicorn (2 workers), N client threads, each signed up with its own account and token, that
write and read for T seconds (``benchmarks.chaos_load``). At 30 % of the run one worker gets
SIGKILL; at 60 % PostgreSQL is stopped and started again. Afterwards every client's ledger is
checked against the API and against the tables (``benchmarks.chaos_check``), and a table is
printed per engine. Exit status: 0 when every checked column is zero, 1 when one is not, 2
when a run could not be made.

Modules, one concept each:

    chaos_http     keep-alive connections, answers and the tally of statuses
    chaos_ledger   the ledger of acknowledged and unknown writes, the findings, the judge
    chaos_load     one client's random steps and its read-your-writes checks
    chaos_check    the ledgers against the API and the database after the load
    chaos_faults   migrate, gunicorn with several workers, kill a worker, restart PostgreSQL
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import BenchmarkError
from .chaos_check import check_api, check_database
from .chaos_faults import (
    Restartable,
    Served,
    Workers,
    ensure_postgres_running,
    kill_worker,
    migrate,
    restart_postgres,
    serve,
    workers_back,
)
from .chaos_http import Connection, NoAnswer, Reply, Tally, excerpt
from .chaos_ledger import COLUMNS, UNEXPLAINED, DeletedIds, Findings, Ledger
from .chaos_load import Client, Shared
from .report import aligned
from .server import log_tail

PASSWORD = "chaos-password-1"
KILL_AT = 0.3  # of the run: when a worker gets SIGKILL
RESTART_AT = 0.6  # of the run: when PostgreSQL restarts
SETUP_SECONDS = 30  # bound on signing up (or recovering) before giving up
ENGINES = ("sqlite", "postgresql")


def _silent(text: str) -> None:
    """Progress is not shown by default (the tests' runs)."""


@dataclass(frozen=True)
class Options:
    """One run's size; the defaults are the command's."""

    seconds: float = 60
    clients: int = 8
    workers: Workers = field(default_factory=Workers)
    timeout: float = 15  # seconds a request may take before it counts as no answer
    down: float = 1.5  # seconds PostgreSQL stays stopped
    seed: int = 42
    progress: Callable[[str], None] = _silent  # told each phase as it ends


@dataclass
class EngineResult:
    """One engine's run: the traffic, what the checks found, which faults were injected."""

    engine: str
    tally: Tally = field(default_factory=Tally)
    checks: Tally = field(default_factory=Tally)
    findings: Findings = field(default_factory=Findings)
    faults: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, column: str) -> int:
        if column == UNEXPLAINED:
            return len(self.tally.unexplained) + len(self.checks.unexplained)
        return self.findings.count(column)

    def details(self, column: str) -> list[str]:
        if column == UNEXPLAINED:
            return self.tally.unexplained + [f"(check) {d}" for d in self.checks.unexplained]
        return self.findings.details(column)

    @property
    def integrity_ok(self) -> bool:
        return self.findings.integrity.startswith("ok")

    def failures(self) -> dict[str, int]:
        """The checked columns that are not zero (integrity: 1 when not ok)."""
        failed = {column: self.count(column) for column in COLUMNS if self.count(column)}
        if not self.integrity_ok:
            failed["integrity"] = 1
        return failed


# -- one engine --------------------------------------------------------------------------------

def run_sqlite(options: Options, workdir: Path) -> EngineResult:
    """The chaos run on a new SQLite file in ``workdir``."""
    url = f"sqlite:///{workdir / 'chaos.db'}"
    return run_engine("sqlite", url, options, workdir, restart=None)


def run_postgresql(options: Options, server: Any, workdir: Path,
                   dbname: str = "chaos") -> EngineResult:
    """The chaos run on a new database ``dbname`` of ``server`` (a ``PostgresServer``, or
    anything with ``create_database``); restarted mid-run when it is one we can restart.
    The server is running again when this returns, whatever happened."""
    url = server.create_database(dbname)
    restart = None
    if getattr(server, "data_dir", None) is not None:
        restartable: Restartable = server
        restart = lambda: restart_postgres(restartable, options.down)  # noqa: E731
    try:
        result = run_engine("postgresql", url, options, workdir, restart)
    finally:
        if restart is not None:
            ensure_postgres_running(server)
    if restart is None:
        result.faults.append("database restart: skipped, the server is not ours to restart")
    return result


def run_engine(engine: str, url: str, options: Options, workdir: Path,
               restart: Callable[[], str] | None) -> EngineResult:
    """Migrate ``url``, serve it, load it with faults, then check every ledger."""
    began = time.monotonic()
    result = EngineResult(engine)
    env = {"DATABASE_URL": url, "TABLEREST_SECRET_KEY": secrets.token_urlsafe(32)}
    with open(workdir / f"gunicorn-{engine}.log", "w+b") as log, \
            ThreadPoolExecutor(1) as background:
        # The workers touch no table before the first request: migrate while they start.
        migrated = background.submit(migrate, env)
        try:
            with serve(env, options.workers, log) as served:
                migrated.result()
                options.progress(f"  {engine}: migrated and served in {_since(began)}")
                ledgers = _load(served, options, result, restart)
                _await_recovery(served.port, options.timeout)
                options.progress(f"  {engine}: load and faults done at {_since(began)}")
                checker = Connection(served.port, result.checks, options.timeout)
                unread = check_api(checker, ledgers, result.findings)
                checker.close()
                if unread:
                    result.notes.append(f"API check: {unread} reads got no usable answer")
        except BenchmarkError as error:
            raise BenchmarkError(f"{engine}: {error}\ngunicorn's log ends with:\n"
                                 f"{log_tail(log)}") from error
    check_database(url, ledgers, result.findings)
    options.progress(f"  {engine}: checked through the API and SQL at {_since(began)}")
    return result


def _since(began: float) -> str:
    return f"{time.monotonic() - began:.1f} s"


def _load(served: Served, options: Options, result: EngineResult,
          restart: Callable[[], str] | None) -> list[Ledger]:
    """Sign the clients up, run them for ``options.seconds`` and inject the faults."""
    tag = secrets.token_hex(3)
    with ThreadPoolExecutor(min(options.clients, 4)) as pool:  # hashing passwords is slow
        accounts = list(pool.map(lambda index: _account(
            served.port, result.tally, options.timeout, f"chaos-{tag}-{index}"),
            range(options.clients)))
    options.progress(f"  {result.engine}: {options.clients} accounts signed up")
    ids = [ledger.user_id for ledger, _ in accounts]
    names = {ledger.user_id: ledger.name for ledger, _ in accounts}
    shared = Shared(served.port, options.timeout, result.tally, result.findings, DeletedIds(),
                    names)
    clients = [
        Client(ledger, token, [peer for peer in ids if peer != ledger.user_id], shared,
               seed=options.seed + index)
        for index, (ledger, token) in enumerate(accounts)
    ]
    start = time.monotonic()
    until = start + options.seconds
    for client in clients:
        client.until = until
    threads = [threading.Thread(target=client.run, name=client.ledger.name, daemon=True)
               for client in clients]
    for thread in threads:
        thread.start()
    try:
        _sleep_until(start + options.seconds * KILL_AT)
        result.faults.append(f"{kill_worker(served)} at {time.monotonic() - start:.1f} s")
        if restart is not None:
            _sleep_until(start + options.seconds * RESTART_AT)
            at = time.monotonic() - start
            result.faults.append(f"{restart()}, at {at:.1f} s")
    except BaseException:
        for client in clients:
            client.stop()
        raise
    finally:
        for thread in threads:
            thread.join(max(0.0, until - time.monotonic()) + options.timeout * 2 + 10)
    if any(thread.is_alive() for thread in threads):
        raise BenchmarkError("A client thread did not stop after the run's end.")
    for client in clients:
        if client.crash is not None:
            raise BenchmarkError(f"client {client.ledger.name} failed: {client.crash!r}"
                                 ) from client.crash
    if not workers_back(served, options.workers.count):
        result.notes.append("gunicorn did not replace the killed worker")
    return [client.ledger for client in clients]


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def _account(port: int, tally: Tally, timeout: float, name: str) -> tuple[Ledger, str]:
    """Sign up ``name`` and log in; retried while the server is busy, within bounds."""
    connection = Connection(port, tally, timeout)
    try:
        return _sign_up(connection, name)
    finally:
        connection.close()


def _sign_up(connection: Connection, name: str) -> tuple[Ledger, str]:
    deadline = time.monotonic() + SETUP_SECONDS
    body = {"name": name, "email": f"{name}@example.com", "password": PASSWORD}
    reply, retried = _setup_request(connection, "POST", "/users", body, deadline)
    created = reply.json()
    if reply.status == 201 and isinstance(created, dict):
        user_id: int = created["id"]
    elif reply.status == 409 and retried:  # an earlier attempt got through unanswered
        user_id = _user_id(connection, name, deadline)
    else:
        raise BenchmarkError(f"POST /users for {name!r} answered {reply.status}:"
                             f" {excerpt(reply.body)}")
    login = {"name": name, "password": PASSWORD}
    reply, _ = _setup_request(connection, "POST", "/auth/token", login, deadline)
    token = reply.json().get("access_token") if isinstance(reply.json(), dict) else None
    if reply.status != 200 or not isinstance(token, str):
        raise BenchmarkError(f"POST /auth/token for {name!r} answered {reply.status}:"
                             f" {excerpt(reply.body)}")
    return Ledger(name, user_id), token


def _setup_request(connection: Connection, method: str, path: str, body: Any,
                   deadline: float) -> tuple[Reply, bool]:
    """Send until the answer is not a 503 or no answer, up to ``deadline``; say whether it
    took more than one attempt."""
    retried = False
    while True:
        outcome = connection.send(method, path, body)
        if isinstance(outcome, Reply) and outcome.status != 503:
            return outcome, retried
        retried = True
        if time.monotonic() > deadline:
            what = outcome.detail if isinstance(outcome, NoAnswer) else "503"
            raise BenchmarkError(f"{method} {path} kept failing for {SETUP_SECONDS} s: {what}")
        time.sleep(0.2)


def _user_id(connection: Connection, name: str, deadline: float) -> int:
    reply, _ = _setup_request(connection, "GET", f"/users?name={quote(name)}", None, deadline)
    body = reply.json()
    items = body.get("items") if isinstance(body, dict) else None
    if reply.status != 200 or not items:
        raise BenchmarkError(f"GET /users?name={name} answered {reply.status}:"
                             f" {excerpt(reply.body)}")
    user_id: int = items[0]["id"]
    return user_id


def _await_recovery(port: int, timeout: float) -> None:
    """Wait until the app answers a read normally again (after the faults), within bounds."""
    probe = Connection(port, Tally(), timeout)
    deadline = time.monotonic() + SETUP_SECONDS
    try:
        while time.monotonic() < deadline:
            outcome = probe.send("GET", "/messages?limit=1")
            if isinstance(outcome, Reply) and outcome.status == 200:
                return
            time.sleep(0.2)
    finally:
        probe.close()
    raise BenchmarkError(f"The app did not answer GET /messages with 200 within {SETUP_SECONDS}"
                         " s after the faults: it did not recover by itself.")


# -- the report --------------------------------------------------------------------------------

DETAILS_SHOWN = 5


def report(result: EngineResult, options: Options) -> str:
    """The engine's table, the faults injected, and evidence for every non-zero column."""
    rows: list[tuple[str, str]] = [("requests", f"{result.tally.requests:,}")]
    rows += [(f"  status {status}", f"{count:,}")
             for status, count in sorted(result.tally.statuses.items())]
    rows += [(column, f"{result.count(column)} {'✓' if not result.count(column) else '✗'}")
             for column in COLUMNS]
    rows.append(("integrity", f"{result.findings.integrity}"
                              f" {'✓' if result.integrity_ok else '✗'}"))
    lines = [
        f"{result.engine}: {options.clients} clients for {options.seconds:g} s,"
        f" gunicorn {options.workers}",
        aligned((result.engine, "result"), rows),
    ]
    lines += [f"  {fault}" for fault in result.faults]
    lines.append(f"  writes with an unknown outcome (no answer, or 5xx): "
                 f"{result.findings.unknown_writes}; check reads: {result.checks.requests:,}")
    if result.tally.no_answer:
        lines.append("  requests without an answer: " + ", ".join(
            f"{count} {method}" for method, count in sorted(result.tally.no_answer.items())))
    lines += [f"  {note}" for note in result.notes]
    for column in COLUMNS:
        details = result.details(column)
        for detail in details[:DETAILS_SHOWN]:
            lines.append(f"  {column}: {detail}")
        if len(details) > DETAILS_SHOWN:
            lines.append(f"  {column}: ... and {len(details) - DETAILS_SHOWN} more")
    return "\n".join(lines)


# -- the command -------------------------------------------------------------------------------

def _positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    def parse(raw: str) -> int | float:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {raw!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected more than 0, got {raw!r}")
        return value
    return parse


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m benchmarks.chaos",
        description="Concurrent clients write and read the microblog while a gunicorn worker is"
                    " killed and PostgreSQL restarts; check that no acknowledged write is lost"
                    " or doubled.")
    cli.add_argument("--engine", choices=(*ENGINES, "both"), default="both",
                     help="database engine(s) to run on (default: both)")
    cli.add_argument("--seconds", type=_positive(float), default=60,
                     help="length of the load on each engine (default: 60)")
    cli.add_argument("--clients", type=_positive(int), default=8,
                     help="client threads, one account each (default: 8)")
    cli.add_argument("--workers", type=_positive(int), default=2,
                     help="gunicorn workers (default: 2)")
    cli.add_argument("--worker-class", choices=("gthread", "sync"), default="gthread",
                     help="gunicorn worker class (default: gthread, which keeps connections"
                          " alive)")
    cli.add_argument("--threads", type=_positive(int), default=2,
                     help="threads per gthread worker (default: 2)")
    return cli


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201


@contextlib.contextmanager
def _postgres() -> Iterator[Any]:
    """A server for the PostgreSQL run: ``$TABLEREST_TEST_POSTGRES_URL``'s, or a throwaway
    one (``tests/pgserver.py``); None when there is neither."""
    from tests.pgserver import postgres_for_tests  # the suite's server, run from the checkout

    server = postgres_for_tests()
    if server is None:
        yield None
        return
    server.start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options = Options(seconds=args.seconds, clients=args.clients,
                      workers=Workers(args.workers, args.worker_class, args.threads),
                      progress=_progress)
    engines = ENGINES if args.engine == "both" else (args.engine,)
    failed = broken = False
    with tempfile.TemporaryDirectory(prefix="tablerest-chaos-") as workdir:
        for engine in engines:
            _progress(f"{engine}: {options.clients} clients for {options.seconds:g} s ...")
            try:
                result = _run(engine, options, Path(workdir))
            except BenchmarkError as error:
                _progress(f"{engine}: FAILED to run: {error}")
                broken = True
                continue
            if result is None:
                _progress(f"{engine}: skipped, PostgreSQL is not installed"
                          " (apt-get install postgresql, or set TABLEREST_TEST_POSTGRES_URL)")
                broken = True
                continue
            print(report(result, options) + "\n")  # noqa: T201
            failed = failed or bool(result.failures())
    return 1 if failed else 2 if broken else 0


def _run(engine: str, options: Options, workdir: Path) -> EngineResult | None:
    if engine == "sqlite":
        return run_sqlite(options, workdir)
    with _postgres() as server:
        return None if server is None else run_postgresql(options, server, workdir)


if __name__ == "__main__":
    sys.exit(main())
