"""Drive one endpoint with ``wrk`` (the Debian package) and read its ``--latency`` report."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import BenchmarkError
from .client import Endpoint
from .server import pinned

INSTALL_HINT = "wrk is not installed: install it with `apt-get install -y wrk` (Debian/Ubuntu)."

# wrk prints latencies with the unit that keeps the number small.
_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_P99 = re.compile(r"^\s*99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)


@dataclass(frozen=True)
class WrkResult:
    """What one measured run of wrk reported."""

    requests_per_second: float
    p99_seconds: float
    requests: int
    non_2xx: int = 0
    socket_errors: int = 0

    @property
    def failures(self) -> int:
        return self.non_2xx + self.socket_errors


def executable() -> str | None:
    """The path of ``wrk``, or None when it is not installed."""
    return shutil.which("wrk")


def parse_output(output: str) -> WrkResult:
    """Read req/s, p99 and error counts from the output of ``wrk --latency``."""
    rate, p99, total = _RATE.search(output), _P99.search(output), _TOTAL.search(output)
    if rate is None or p99 is None or total is None:
        raise BenchmarkError(f"Could not read wrk's report (was --latency given?):\n{output}")
    non_2xx = _NON_2XX.search(output)
    socket_errors = _SOCKET_ERRORS.search(output)
    return WrkResult(
        requests_per_second=float(rate.group(1)),
        p99_seconds=float(p99.group(1)) * _TIME_UNITS[p99.group(2)],
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in socket_errors.groups()) if socket_errors else 0,
    )


def lua_string(text: str) -> str:
    """``text`` as a Lua string literal; anything but plain printable ASCII is escaped."""
    escaped = "".join(
        chr(byte) if 0x20 <= byte < 0x7F and chr(byte) not in "\"\\" else f"\\{byte:03d}"
        for byte in text.encode()
    )
    return f'"{escaped}"'


def request_script(endpoint: Endpoint, token: str | None) -> str:
    """A wrk Lua script sending ``endpoint``'s method, JSON body and bearer token."""
    lines = [f"wrk.method = {lua_string(endpoint.method)}"]
    if endpoint.body is not None:
        lines.append(f"wrk.body = {lua_string(endpoint.body.decode())}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    if endpoint.needs_token:
        if token is None:
            raise BenchmarkError(f"{endpoint.label} needs a bearer token and none was obtained.")
        lines.append(f'wrk.headers["Authorization"] = {lua_string("Bearer " + token)}')
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class WrkOptions:
    connections: int = 8
    cpu: int | None = 1
    timeout: float = 2.0  # wrk's per-request timeout, in seconds


def run(
    base_url: str,
    endpoint: Endpoint,
    token: str | None,
    duration: int,
    options: WrkOptions,
    script_dir: Path,
) -> WrkResult:
    """Run wrk against ``endpoint`` for ``duration`` seconds; one thread, pinned."""
    wrk = executable()
    if wrk is None:
        raise BenchmarkError(INSTALL_HINT)
    command = [
        wrk, "-t1", f"-c{options.connections}", f"-d{duration}s",
        "--timeout", f"{options.timeout:g}s", "--latency",
    ]
    if endpoint.method != "GET" or endpoint.body is not None or endpoint.needs_token:
        script = script_dir / "request.lua"  # runs are sequential: one script at a time
        script.write_text(request_script(endpoint, token))
        command += ["-s", str(script)]
    command.append(base_url + endpoint.path)
    completed = subprocess.run(
        pinned(command, options.cpu), capture_output=True, text=True, timeout=duration + 60
    )
    if completed.returncode != 0:
        raise BenchmarkError(
            f"wrk failed on {endpoint.label} with status {completed.returncode}:\n"
            f"{completed.stderr or completed.stdout}"
        )
    return parse_output(completed.stdout)
