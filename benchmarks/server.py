"""Serve one app with gunicorn (sync workers, pinned to a core or not) for a benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import BenchmarkError


@dataclass(frozen=True)
class AppSpec:
    """How to serve one of the compared apps."""

    label: str
    chdir: Path
    target: str  # gunicorn's APP_MODULE, e.g. "microblog.app:create_app()"


def pinned(command: Sequence[str], cpu: int | None) -> list[str]:
    """``command`` prefixed with ``taskset -c cpu``, or unchanged when ``cpu`` is None."""
    return ["taskset", "-c", str(cpu), *command] if cpu is not None else list(command)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def log_tail(log: IO[bytes], lines: int = 20) -> str:
    log.flush()
    log.seek(0)
    text = log.read().decode(errors="replace").rstrip().splitlines()
    return "\n".join(text[-lines:])


def _wait_until_answering(
    process: subprocess.Popen[bytes], base_url: str, log: IO[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(
                f"gunicorn exited with status {process.returncode} before answering;"
                f" its log ends with:\n{log_tail(log)}"
            )
        try:
            with urllib.request.urlopen(f"{base_url}/", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer, even a 404, means the worker is serving
        except OSError:
            time.sleep(0.1)
    raise BenchmarkError(
        f"gunicorn did not answer on {base_url} within {timeout:.0f} s;"
        f" its log ends with:\n{log_tail(log)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # gunicorn's master stops its workers gracefully on SIGTERM
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def worker_cpu_seconds(master: int) -> float:
    """The user + system CPU seconds the child processes of ``master`` (gunicorn's workers)
    have used so far: the server's own cost, whatever else runs on the machine."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue  # gone in between
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if int(fields[1]) == master:  # ppid; utime and stime follow
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def serve(
    spec: AppSpec, env: Mapping[str, str], cpu: int | None, log: IO[bytes], timeout: float = 30,
    workers: int = 1,
) -> Iterator[str]:
    """Run ``spec`` under gunicorn (``workers`` sync workers) on a free local port; yield its
    base URL; stop it after."""
    with serve_process(spec, env, cpu, log, timeout, workers) as (base_url, _process):
        yield base_url


@contextmanager
def serve_process(
    spec: AppSpec, env: Mapping[str, str], cpu: int | None, log: IO[bytes], timeout: float = 30,
    workers: int = 1,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``serve``, yielding the base URL and the gunicorn master's process."""
    port = free_port()
    command = pinned(
        [
            sys.executable, "-m", "gunicorn", "--chdir", str(spec.chdir), "-w", str(workers),
            "-b", f"127.0.0.1:{port}", "--no-control-socket", spec.target,
        ],
        cpu,
    )
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_answering(process, base_url, log, timeout)
        yield base_url, process
        if process.poll() is not None:
            raise BenchmarkError(
                f"gunicorn exited with status {process.returncode} during the run;"
                f" its log ends with:\n{log_tail(log)}"
            )
    finally:
        _stop(process)
