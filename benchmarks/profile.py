"""``python -m benchmarks.profile``: where one request's time goes, without HTTP or gunicorn.

Each app (the raw floor, the Flask floor, the microblog) is called in-process as a WSGI
callable on the benchmark data, each endpoint many times: the table shows the CPU
microseconds of this process per request (the best of a few rounds; CPU time, so that other
load on a shared machine matters less; on PostgreSQL the server's work is not in it), and
``--profile APP:ENDPOINT`` prints cProfile's view of that pair (cumulative and own time).

    PYTHONPATH=src python -m benchmarks.profile --engine sqlite
    PYTHONPATH=src python -m benchmarks.profile --engine postgresql --profile tablerest:post
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .client import Endpoint, endpoints
from .data import Sizes, cached_database, fresh_copy, typical_user
from .floor_sql import floor_token
from .report import aligned
from .runner import MICROBLOG_DIR, _password_hash

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
SECRET = "benchmark-profile-secret-0123456789"


def _environ(endpoint: Endpoint, token: str) -> Callable[[], dict[str, Any]]:
    from werkzeug.test import EnvironBuilder

    path, _, query = endpoint.path.partition("?")
    headers = {"Authorization": f"Bearer {token}"} if endpoint.needs_token else {}
    builder = EnvironBuilder(path=path, query_string=query, method=endpoint.method,
                             data=endpoint.body, headers=headers,
                             content_type="application/json" if endpoint.body else None)
    template = builder.get_environ()
    body = endpoint.body or b""

    def fresh() -> dict[str, Any]:
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(body)
        return environ

    return fresh


def _call(app: Wsgi, environ: dict[str, Any]) -> str:
    status: list[str] = []

    def start_response(code: str, headers: Any, exc_info: Any = None) -> None:
        status.append(code)

    chunks = app(environ, start_response)
    for _ in chunks:
        pass
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
    return status[0]


def _apps(url: str) -> dict[str, Wsgi]:
    os.environ.update({"DATABASE_URL": url, "TABLEREST_SECRET_KEY": SECRET,
                       "TABLEREST_TOKEN_TTL": "3600"})
    from .floor_app import create_app as flask_floor
    from .raw_app import create_app as raw_floor

    sys.path.insert(0, str(MICROBLOG_DIR))
    from microblog.app import create_app as microblog

    return {"raw": raw_floor(), "flask": flask_floor(), "tablerest": microblog()}


def _token(app: str, apps: dict[str, Wsgi], user: Any, password_hash: str) -> str:
    if app != "tablerest":
        return floor_token(SECRET, user.id, password_hash)
    from flask import Flask

    from tablerest.auth import issue_token
    from tablerest.extension import state_of

    flask_app = apps["tablerest"]
    assert isinstance(flask_app, Flask)
    return str(issue_token(state_of(flask_app), user.id)["access_token"])


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    cli.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    cli.add_argument("--requests", type=int, default=2000, help="per round (default: 2000)")
    cli.add_argument("--rounds", type=int, default=3)
    cli.add_argument("--profile", action="append", default=[], metavar="APP:ENDPOINT",
                     help="print cProfile's view of e.g. tablerest:post (repeatable)")
    cli.add_argument("--top", type=int, default=30)
    args = cli.parse_args(argv)
    sizes = Sizes()
    source = cached_database(sizes)
    user = typical_user(source, sizes)
    password_hash = _password_hash(source, user.id)
    chosen = endpoints(user.id)
    server = None
    with tempfile.TemporaryDirectory(prefix="tablerest-profile-") as workdir:
        if args.engine == "sqlite":
            shutil.copyfile(source, Path(workdir) / "source.db")
            url = f"sqlite:///{fresh_copy(Path(workdir) / 'source.db', Path(workdir))}"
        else:
            from .postgres import clone, load, start_server

            server = start_server()
            load(server, source, MICROBLOG_DIR)
            url = clone(server, "bench_profile")
        try:
            apps = _apps(url)
            rows = []
            for endpoint in chosen:
                row = [endpoint.label]
                for name, app in apps.items():
                    make = _environ(endpoint, _token(name, apps, user, password_hash))
                    status = _call(app, make())
                    if not status.startswith(str(endpoint.expected_status)):
                        raise SystemExit(f"{name} {endpoint.label} answered {status}")
                    best = min(_timed(app, make, args.requests) for _ in range(args.rounds))
                    row.append(f"{best * 1e6:,.0f} µs")
                    if f"{name}:{endpoint.key}" in args.profile:
                        _profile(app, make, args.requests, args.top)
                rows.append(row)
            print(aligned(["endpoint", *apps], rows))  # noqa: T201
        finally:
            if server is not None:
                server.stop()
    return 0


def _timed(app: Wsgi, make: Callable[[], dict[str, Any]], count: int) -> float:
    environs = [make() for _ in range(count)]
    started = time.process_time()  # this process's CPU time: other load does not count
    for environ in environs:
        _call(app, environ)
    return (time.process_time() - started) / count


def _profile(app: Wsgi, make: Callable[[], dict[str, Any]], count: int, top: int) -> None:
    environs = [make() for _ in range(count)]
    profiler = cProfile.Profile()
    profiler.enable()
    for environ in environs:
        _call(app, environ)
    profiler.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        print(out.getvalue())  # noqa: T201


if __name__ == "__main__":
    sys.exit(main())
