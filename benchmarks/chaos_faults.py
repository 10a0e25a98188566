"""The chaos run's machinery: migrate, serve with several gunicorn workers, kill one worker,
restart PostgreSQL in place.

The restart keeps the cluster: ``pg_ctl stop -m fast`` (sessions are ended, committed work is
flushed, as in a planned restart) and ``pg_ctl start`` on the same data directory and port, run
as the directory's owner. ``PostgresServer.stop()`` would throw the data away instead.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from . import BenchmarkError
from .server import _stop, _wait_until_answering, free_port, log_tail

ROOT = Path(__file__).resolve().parent.parent
MICROBLOG_DIR = ROOT / "examples" / "microblog"
MICROBLOG_TARGET = "microblog.app:create_app()"
PG_TIMEOUT = 60  # seconds for pg_ctl stop and start


@dataclass(frozen=True)
class Workers:
    """How gunicorn serves the microblog."""

    count: int = 2
    worker_class: str = "gthread"
    threads: int = 2  # per gthread worker

    def __str__(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"{self.count} {self.worker_class} workers{threads}"


@dataclass(frozen=True)
class Served:
    port: int
    master: subprocess.Popen[bytes]


def migrate(env: Mapping[str, str]) -> None:
    """``tablerest --app examples/microblog/microblog/app.py db upgrade`` on ``env``'s
    ``DATABASE_URL``, as a user would run it."""
    command = _tablerest_command()
    app = MICROBLOG_DIR / "microblog" / "app.py"
    try:
        result = subprocess.run(
            [*command, "--app", str(app), "db", "upgrade"], env={**os.environ, **env},
            capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BenchmarkError(f"tablerest db upgrade could not run: {error}") from error
    if result.returncode != 0:
        raise BenchmarkError(
            f"tablerest db upgrade failed with status {result.returncode}:"
            f"\n{result.stderr.strip() or result.stdout.strip()}")


def _tablerest_command() -> list[str]:
    beside = Path(sys.executable).with_name("tablerest")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("tablerest")
    if found is None:
        raise BenchmarkError("The tablerest command is not installed (pip install -e .).")
    return [found]


@contextmanager
def serve(env: Mapping[str, str], workers: Workers, log: IO[bytes],
          timeout: float = 30) -> Iterator[Served]:
    """The microblog under gunicorn on a free port of 127.0.0.1; stopped on the way out."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--chdir", str(MICROBLOG_DIR),
        "-w", str(workers.count), "-k", workers.worker_class,
        "--graceful-timeout", "5", "-b", f"127.0.0.1:{port}", "--no-control-socket",
        MICROBLOG_TARGET,
    ]
    if workers.worker_class == "gthread":  # gunicorn makes a sync worker with threads gthread
        command[-1:-1] = ["--threads", str(workers.threads)]
    master = subprocess.Popen(command, env={**os.environ, **env}, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        _wait_until_answering(master, f"http://127.0.0.1:{port}", log, timeout)
        yield Served(port, master)
        if master.poll() is not None:
            raise BenchmarkError(
                f"gunicorn exited with status {master.returncode} during the run;"
                f" its log ends with:\n{log_tail(log)}")
    finally:
        _quit(master)


def _quit(master: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn at once (SIGQUIT): the checks are done, no request is left to finish."""
    if master.poll() is None:
        master.send_signal(signal.SIGQUIT)
        try:
            master.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _stop(master)


def worker_pids(master: int) -> list[int]:
    """The live children of process ``master`` (gunicorn's workers), from ``/proc``."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process ended while we looked
        if len(fields) > 1 and fields[0] != "Z" and int(fields[1]) == master:
            children.append(int(stat.parent.name))
    return sorted(children)


def kill_worker(served: Served) -> str:
    """SIGKILL one gunicorn worker; say which, or why none was."""
    pids = worker_pids(served.master.pid)
    if not pids:
        return "worker kill: no worker process found under gunicorn's master"
    victim = pids[0]
    os.kill(victim, signal.SIGKILL)
    return f"worker kill: SIGKILL to worker {victim} (of {len(pids)})"


def workers_back(served: Served, count: int, timeout: float = 15) -> bool:
    """Wait until gunicorn has ``count`` workers again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(worker_pids(served.master.pid)) >= count:
            return True
        time.sleep(0.2)
    return False


class Restartable(Protocol):
    """What a restart needs of ``tests.pgserver.PostgresServer``."""

    bindir: Path

    @property
    def data_dir(self) -> Path | None: ...

    @property
    def log_file(self) -> Path | None: ...


def restart_postgres(server: Restartable, down: float) -> str:
    """Stop the server, leave it down ``down`` seconds, start it again on the same data."""
    data_dir, log_file = server.data_dir, server.log_file
    if data_dir is None or log_file is None:
        raise BenchmarkError("The PostgreSQL server is not running: nothing to restart.")
    stopped = time.monotonic()
    _pg_ctl(server.bindir, data_dir, ["stop", "-D", str(data_dir), "-m", "fast", "-w",
                                      "-t", str(PG_TIMEOUT)])
    try:
        time.sleep(down)
    finally:
        _pg_ctl(server.bindir, data_dir, ["start", "-D", str(data_dir), "-l", str(log_file),
                                          "-w", "-t", str(PG_TIMEOUT)])
    return (f"database restart: PostgreSQL stopped (fast) and started again,"
            f" down {time.monotonic() - stopped:.1f} s")


def ensure_postgres_running(server: Restartable) -> None:
    """Start the server again if a failed restart left it stopped."""
    data_dir, log_file = server.data_dir, server.log_file
    if data_dir is None or log_file is None or (data_dir / "postmaster.pid").exists():
        return
    _pg_ctl(server.bindir, data_dir, ["start", "-D", str(data_dir), "-l", str(log_file),
                                      "-w", "-t", str(PG_TIMEOUT)])


def _pg_ctl(bindir: Path, data_dir: Path, args: list[str]) -> None:
    """Run ``pg_ctl`` as the owner of ``data_dir`` (the server refuses to run as root)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    kwargs: dict[str, Any] = {}
    owner = data_dir.stat().st_uid
    if owner != os.geteuid():
        user = pwd.getpwuid(owner)
        kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
    try:
        result = subprocess.run(
            [str(bindir / "pg_ctl"), *args], stdin=subprocess.DEVNULL, capture_output=True,
            text=True, env=env, cwd=data_dir.parent, timeout=PG_TIMEOUT + 10, check=False,
            **kwargs)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BenchmarkError(f"pg_ctl {args[0]} could not run: {error}") from error
    if result.returncode != 0:
        raise BenchmarkError(f"pg_ctl {args[0]} failed with status {result.returncode}:"
                             f"\n{result.stderr.strip() or result.stdout.strip()}")
