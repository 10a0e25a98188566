"""A throwaway PostgreSQL server for the test session.

``PostgresServer`` runs ``initdb`` into a fresh temporary directory, starts the server on a free
port of 127.0.0.1 (never on a public address) with durability switched off for speed and
``trust`` authentication for the superuser ``postgres``, and removes everything on ``stop()``.
``initdb`` refuses to run as root, so when the tests run as root (CI containers) the server
commands run as the ``postgres`` system user instead.

``ReplicaServer(primary)`` is a streaming replica of a running ``PostgresServer``: a copy made
by ``pg_basebackup -R`` into another temporary directory, started on another free port; it can
be halted and started again mid-test (``halt()``, ``resume()``), and ``stop()`` removes it.

``TABLEREST_TEST_POSTGRES_URL`` is the escape hatch for machines without the binaries, or to
test against a particular server: ``server_from_env()`` then returns an ``ExternalPostgres``
with the same ``url()``, ``create_database()`` and ``drop_database()``, whose ``start()`` and
``stop()`` do nothing. ``postgres_for_tests()`` picks whichever is available.

    with PostgresServer() as server:
        url = server.create_database("tablerest_test")
        engine = sqlalchemy.create_engine(url)
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

__all__ = [
    "ENV_URL",
    "ExternalPostgres",
    "PostgresServer",
    "PostgresServerError",
    "ReplicaServer",
    "find_pg_bin",
    "postgres_for_tests",
    "server_from_env",
]

ENV_URL = "TABLEREST_TEST_POSTGRES_URL"

_PG_LIB = Path("/usr/lib/postgresql")
# Users that may run the server when we are root, in order of preference.
_UNPRIVILEGED_USERS = ("postgres", "nobody")
_DBNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_TIMEOUT = 60  # seconds, for initdb and for pg_ctl start/stop
_SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
    "timezone": "'UTC'",
    # A primary for ReplicaServer (initdb's pg_hba.conf lets 127.0.0.1 replicate with trust).
    "wal_level": "replica",
    "max_wal_senders": "10",
}


class PostgresServerError(RuntimeError):
    """The throwaway server could not be set up, started or stopped."""


def find_pg_bin() -> Path | None:
    """Return the directory holding ``initdb`` and ``pg_ctl``, or None if PostgreSQL is absent.

    ``initdb`` on PATH wins (resolved through symlinks, so Debian's ``/usr/local/bin`` links
    lead to the real directory); otherwise the highest version in ``/usr/lib/postgresql``.
    """
    on_path = shutil.which("initdb")
    if on_path is not None:
        bindir = Path(on_path).resolve().parent
        if _is_pg_bin(bindir):
            return bindir
    candidates = [
        bindir
        for bindir in (_PG_LIB.glob("*/bin") if _PG_LIB.is_dir() else [])
        if _is_pg_bin(bindir)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda bindir: _version_key(bindir.parent.name))


def _is_pg_bin(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (-1,)


def _check_dbname(name: str) -> None:
    if not _DBNAME.fullmatch(name):
        raise ValueError(
            f"Database name {name!r} is not allowed: use letters, digits and underscores, "
            "starting with a letter or underscore, at most 63 characters."
        )


class _DatabaseAdmin:
    """Database creation and URLs on a server; subclasses say where the server is."""

    def _server_url(self) -> URL:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def url(self, dbname: str = "postgres") -> str:
        """The SQLAlchemy URL (``postgresql+psycopg://...``) of database ``dbname``."""
        url = self._server_url().set(drivername="postgresql+psycopg", database=dbname)
        return url.render_as_string(hide_password=False)

    def create_database(self, name: str) -> str:
        """Create database ``name`` (dropping it first if it exists) and return its URL."""
        _check_dbname(name)
        with self._admin_connection() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting any sessions still using it."""
        _check_dbname(name)
        with self._admin_connection() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def _admin_connection(self) -> psycopg.Connection[Any]:
        url = self._server_url()
        conninfo = url.set(drivername="postgresql", database=url.database or "postgres")
        return psycopg.connect(conninfo.render_as_string(hide_password=False), autocommit=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ExternalPostgres(_DatabaseAdmin):
    """A server someone else runs, named by a URL; ``start()`` and ``stop()`` do nothing.

    Databases are created and dropped through the URL's own database (``postgres`` if the URL
    names none), so its user needs the ``CREATEDB`` privilege.
    """

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError) as exc:
            raise PostgresServerError(f"{ENV_URL}={url!r} is not a database URL: {exc}") from exc
        if parsed.get_backend_name() != "postgresql":
            raise PostgresServerError(
                f"{ENV_URL}={url!r} must be a PostgreSQL URL, like "
                "'postgresql://user:password@127.0.0.1:5432/postgres'."
            )
        self._url = parsed

    def _server_url(self) -> URL:
        return self._url

    def start(self) -> None:
        """Nothing to do: the server is already running."""

    def stop(self) -> None:
        """Nothing to do: the server is not ours to stop."""

    def __repr__(self) -> str:
        return f"ExternalPostgres({self._url.render_as_string(hide_password=True)!r})"


def server_from_env() -> ExternalPostgres | None:
    """An ``ExternalPostgres`` for ``$TABLEREST_TEST_POSTGRES_URL``, or None when it is unset."""
    url = os.environ.get(ENV_URL, "").strip()
    return ExternalPostgres(url) if url else None


def postgres_for_tests() -> ExternalPostgres | PostgresServer | None:
    """The server from the environment, else a local throwaway one, else None (no binaries)."""
    external = server_from_env()
    if external is not None:
        return external
    if find_pg_bin() is None:
        return None
    return PostgresServer()


class PostgresServer(_DatabaseAdmin):
    """A PostgreSQL server in a temporary directory, for one test session.

    ``start()`` runs ``initdb`` and ``pg_ctl start``; ``stop()`` stops the server and removes the
    directory. Both are safe to call twice. A server still running when the interpreter exits
    is stopped then too.
    """

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_pg_bin()
        if found is None:
            raise PostgresServerError(
                "PostgreSQL is not installed: no 'initdb' on PATH or in "
                f"{_PG_LIB}/*/bin. Install the 'postgresql' package, or set {ENV_URL}."
            )
        self.bindir = found
        self.base_dir: Path | None = None
        self.port: int | None = None
        self._run_as = _unprivileged_user() if os.geteuid() == 0 else None

    @property
    def data_dir(self) -> Path | None:
        """The cluster's data directory while the server exists."""
        return None if self.base_dir is None else self.base_dir / "data"

    @property
    def log_file(self) -> Path | None:
        return None if self.base_dir is None else self.base_dir / "postgres.log"

    def _server_url(self) -> URL:
        if self.port is None:
            raise PostgresServerError("The PostgreSQL server is not running: call start() first.")
        return URL.create(
            "postgresql+psycopg", username="postgres", host="127.0.0.1", port=self.port
        )

    def start(self) -> None:
        """Create the cluster and start the server; returns once it accepts connections."""
        if self.base_dir is not None:
            return
        self.base_dir = self._make_base_dir()
        atexit.register(self.stop)
        try:
            self._run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.base_dir / "data"),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--no-instructions",
                ],
                what="initdb",
            )
            self.port = self._start_server(self.base_dir)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (immediately: the data is thrown away) and remove its directory."""
        atexit.unregister(self.stop)
        base_dir = self.base_dir
        if base_dir is None:
            return
        self.port = None
        try:
            if (base_dir / "data" / "postmaster.pid").exists():
                self._run(
                    [
                        self._bin("pg_ctl"),
                        "stop",
                        "-D",
                        str(base_dir / "data"),
                        "-m",
                        "immediate",
                        "-w",
                        "-t",
                        str(_TIMEOUT),
                    ],
                    what="pg_ctl stop",
                )
        finally:
            self.base_dir = None
            shutil.rmtree(base_dir, ignore_errors=True)

    def _make_base_dir(self) -> Path:
        return make_base_dir("tablerest-pg-", self._run_as)

    def _start_server(self, base_dir: Path) -> int:
        data_dir = base_dir / "data"
        # A port picked by binding to port 0 may be taken before the server binds it: retry.
        attempt = 1
        while True:
            port = _free_port()
            settings = {
                **_SERVER_SETTINGS,
                **self._extra_settings(),
                "port": str(port),
                "unix_socket_directories": f"'{base_dir}'",
            }
            # postgresql.auto.conf is read after postgresql.conf, and the last value wins.
            (data_dir / "postgresql.auto.conf").write_text(
                "".join(f"{key} = {value}\n" for key, value in settings.items())
            )
            try:
                self._run(
                    [
                        self._bin("pg_ctl"),
                        "start",
                        "-D",
                        str(data_dir),
                        "-l",
                        str(base_dir / "postgres.log"),
                        "-w",
                        "-t",
                        str(_TIMEOUT),
                    ],
                    what="pg_ctl start",
                )
            except PostgresServerError as exc:
                if attempt >= 3 or "already in use" not in str(exc):
                    raise
                attempt += 1
                continue
            return port

    def _extra_settings(self) -> dict[str, str]:
        return {}

    def _bin(self, name: str) -> str:
        return str(self.bindir / name)

    def _run(self, args: Sequence[str], *, what: str) -> None:
        kwargs: dict[str, Any] = {}
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._run_as is not None:
            user = self._run_as
            kwargs.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
            env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
        try:
            result = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                env=env,
                cwd=self.base_dir,
                timeout=_TIMEOUT + 10,
                check=False,
                **kwargs,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PostgresServerError(f"{what} could not run: {exc}") from exc
        if result.returncode != 0:
            output = (result.stderr.strip() or result.stdout.strip()) or "(no output)"
            message = f"{what} failed with exit status {result.returncode}:\n{output}"
            log = self._log_tail()
            if log:
                message += f"\nServer log ({self.log_file}):\n{log}"
            raise PostgresServerError(message)

    def _log_tail(self, lines: int = 30) -> str:
        if self.log_file is None:
            return ""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def __repr__(self) -> str:
        where = f"port {self.port}" if self.port is not None else "stopped"
        return f"PostgresServer({str(self.bindir)!r}, {where})"


class ReplicaServer(PostgresServer):
    """A hot standby streaming from ``primary``, in a temporary directory of its own.

    ``start()`` copies the primary with ``pg_basebackup -R`` (which writes ``standby.signal``)
    and starts the copy; ``halt()`` stops it and ``resume()`` starts it again on the same port,
    keeping its data; ``stop()`` stops it and removes the directory (also at exit).
    """

    def __init__(self, primary: PostgresServer, name: str = "replica") -> None:
        super().__init__(primary.bindir)
        self.primary = primary
        self.name = name

    def start(self) -> None:
        if self.base_dir is not None:
            return
        if self.primary.port is None:
            raise PostgresServerError("The primary is not running: start it first.")
        self.base_dir = self._make_base_dir()
        atexit.register(self.stop)
        try:
            self._run(
                [
                    self._bin("pg_basebackup"),
                    "-D", str(self.base_dir / "data"),
                    "-h", "127.0.0.1",
                    "-p", str(self.primary.port),
                    "-U", "postgres",
                    "-R",  # a standby: standby.signal and primary_conninfo
                    "-X", "stream",
                    "-c", "fast",
                    "--no-sync",
                ],
                what="pg_basebackup",
            )
            self.port = self._start_server(self.base_dir)
        except BaseException:
            self.stop()
            raise

    def halt(self) -> None:
        """Stop the server (a fast shutdown: sessions are ended) and keep its data."""
        if self.base_dir is None or self.port is None:
            raise PostgresServerError("The replica is not running.")
        self._run([self._bin("pg_ctl"), "stop", "-D", str(self.base_dir / "data"),
                   "-m", "fast", "-w", "-t", str(_TIMEOUT)], what="pg_ctl stop")

    def resume(self) -> None:
        """Start the halted server again, on the port it had."""
        if self.base_dir is None:
            raise PostgresServerError("The replica was removed: start() makes a new one.")
        self._run([self._bin("pg_ctl"), "start", "-D", str(self.base_dir / "data"),
                   "-l", str(self.base_dir / "postgres.log"), "-w", "-t", str(_TIMEOUT)],
                  what="pg_ctl start")

    def _extra_settings(self) -> dict[str, str]:
        # pg_basebackup -R wrote primary_conninfo into postgresql.auto.conf, which
        # _start_server rewrites: say it again, with a name that pg_stat_replication shows.
        primary = self.primary.port
        return {"primary_conninfo": f"'host=127.0.0.1 port={primary} user=postgres "
                                    f"application_name={self.name}'",
                "hot_standby": "on"}

    def __repr__(self) -> str:
        where = f"port {self.port}" if self.port is not None else "stopped"
        return f"ReplicaServer({self.name!r}, {where})"


def make_base_dir(prefix: str, run_as: pwd.struct_passwd | None) -> Path:
    """A fresh temporary directory, owned by ``run_as`` when a server runs as that user.

    The server's user must be able to reach the directory: fall back to /tmp when TMPDIR
    sits somewhere private to root."""
    if run_as is None:
        return Path(tempfile.mkdtemp(prefix=prefix))
    parent = Path(tempfile.gettempdir())
    if not _world_traversable(parent):
        parent = Path("/tmp")
    base_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chown(base_dir, run_as.pw_uid, run_as.pw_gid)
    return base_dir


def _unprivileged_user() -> pwd.struct_passwd:
    for name in _UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresServerError(
        "initdb refuses to run as root and there is no 'postgres' (or 'nobody') user to run it "
        "as: install the 'postgresql' package, run the tests as an unprivileged user, "
        f"or set {ENV_URL}."
    )


def _world_traversable(path: Path) -> bool:
    path = path.resolve()
    return all(os.stat(part).st_mode & stat.S_IXOTH for part in (path, *path.parents))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
