"""A throwaway PgBouncer in front of the suite's PostgreSQL server, in transaction pooling mode.

``PgBouncer(server).start()`` writes a ``pgbouncer.ini`` into a fresh temporary directory and
runs Debian's ``pgbouncer`` in the foreground on a free port of 127.0.0.1 (never a public
address, no Unix socket), with ``pool_mode = transaction`` and a pool of
``DEFAULT_POOL_SIZE`` server connections per database and user, so that the clients really
share server connections. Clients log in without a password (``auth_type = trust``: a
throwaway); PgBouncer logs in to the server as the server URL's user. ``pgbouncer`` refuses to
run as root, so when the tests run as root it runs as the ``postgres`` user, as the server
does. ``stop()`` stops it and removes the directory; both are safe to call twice, and a
PgBouncer still running when the interpreter exits is stopped then too.

    with PgBouncer(server) as bouncer:
        engine = sqlalchemy.create_engine(bouncer.url("tablerest_test"))
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from sqlalchemy.engine import make_url

from pgserver import _free_port, _unprivileged_user, make_base_dir

__all__ = ["DEFAULT_POOL_SIZE", "PgBouncer", "PgBouncerError", "find_pgbouncer"]

#: Server connections per database and user: fewer than the app's pool, so they are shared.
DEFAULT_POOL_SIZE = 2
_SBIN = Path("/usr/sbin/pgbouncer")  # Debian's, not on a non-root PATH
_TIMEOUT = 20  # seconds to start or stop


class PgBouncerError(RuntimeError):
    """The throwaway PgBouncer could not be set up, started or stopped."""


class Server(Protocol):
    """What PgBouncer needs of the suite's server (``PostgresServer``, ``ExternalPostgres``)."""

    def url(self, dbname: str = "postgres") -> str: ...


def find_pgbouncer() -> Path | None:
    """The ``pgbouncer`` program, or None when it is not installed."""
    on_path = shutil.which("pgbouncer")
    if on_path is not None:
        return Path(on_path)
    return _SBIN if os.access(_SBIN, os.X_OK) else None


class PgBouncer:
    """PgBouncer in transaction pooling mode before ``server``, for one test session."""

    def __init__(self, server: Server, binary: Path | None = None) -> None:
        found = binary or find_pgbouncer()
        if found is None:
            raise PgBouncerError("PgBouncer is not installed: install the 'pgbouncer' package.")
        self.binary = found
        self.server = server
        self.base_dir: Path | None = None
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._run_as = _unprivileged_user() if os.geteuid() == 0 else None

    @property
    def log_file(self) -> Path | None:
        return None if self.base_dir is None else self.base_dir / "pgbouncer.log"

    def url(self, dbname: str) -> str:
        """The SQLAlchemy URL of database ``dbname`` through PgBouncer."""
        if self.port is None:
            raise PgBouncerError("PgBouncer is not running: call start() first.")
        server = make_url(self.server.url(dbname))
        url = server.set(host="127.0.0.1", port=self.port, password=None)
        return url.render_as_string(hide_password=False)

    def start(self) -> None:
        """Start PgBouncer; returns once it accepts connections."""
        if self.base_dir is not None:
            return
        self.base_dir = self._make_base_dir()
        atexit.register(self.stop)
        try:
            for attempt in range(3):  # a free port may be taken before PgBouncer binds it
                port = _free_port()
                self._write_config(self.base_dir, port)
                if self._launch(self.base_dir, port, last=attempt == 2):
                    self.port = port
                    return
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop PgBouncer (its clients are cut off) and remove its directory."""
        atexit.unregister(self.stop)
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # "safe shutdown": waits for no client
            try:
                process.wait(_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(_TIMEOUT)
        self.port = None
        base_dir, self.base_dir = self.base_dir, None
        if base_dir is not None:
            shutil.rmtree(base_dir, ignore_errors=True)

    def _make_base_dir(self) -> Path:
        return make_base_dir("tablerest-pgbouncer-", self._run_as)

    def _write_config(self, base_dir: Path, port: int) -> None:
        server = make_url(self.server.url())
        user = server.username or "postgres"
        target = f"host={server.host or '127.0.0.1'} port={server.port or 5432} user={user}"
        if server.password:
            target += f" password={server.password}"
        (base_dir / "users.txt").write_text(f'"{user}" ""\n')
        (base_dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = {target}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {base_dir / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {DEFAULT_POOL_SIZE}\n"
            "max_client_conn = 200\n"
            f"logfile = {self.log_file}\n"
        )

    def _launch(self, base_dir: Path, port: int, *, last: bool) -> bool:
        """Run PgBouncer and wait for its port; False when the port was taken meanwhile."""
        kwargs: dict[str, Any] = {}
        if self._run_as is not None:
            user = self._run_as
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
        # What it says before its log file is open (a bad setting) goes to stderr.
        with open(base_dir / "stderr.log", "wb") as stderr:
            process = self._process = subprocess.Popen(
                [str(self.binary), str(base_dir / "pgbouncer.ini")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                cwd=base_dir, **kwargs)
        deadline = time.monotonic() + _TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._process = None
                output = (base_dir / "stderr.log").read_text(errors="replace") + self._log_tail()
                if "Address already in use" in output and not last:
                    return False
                raise PgBouncerError(
                    f"pgbouncer exited with status {process.returncode}:\n{output.strip()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", port), timeout=1):
                return True
            time.sleep(0.05)
        raise PgBouncerError(f"pgbouncer did not listen on port {port} within {_TIMEOUT} s:\n"
                             f"{self._log_tail()}")

    def _log_tail(self, lines: int = 30) -> str:
        if self.log_file is None:
            return ""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"port {self.port}" if self.port is not None else "stopped"
        return f"PgBouncer({str(self.binary)!r}, {where})"
