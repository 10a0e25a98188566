"""The console as a newcomer meets it: commands that sign nothing need no secret, messages
name `tablerest`, tables are whole when piped, and `serve` says when it faces a network."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo

from conftest import SECRET
from tablerest.auth import TokenSigner
from tablerest.cli import main
from tablerest.errors import ConfigurationError
from tablerest.extension import state_of


def run(app: Flask, *args: str, **options: Any) -> Result:
    return CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app),
                              **options)


@pytest.fixture
def microblog_without_secret(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    from microblog.app import create_app

    for name in ("TABLEREST_SECRET_KEY", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    app = create_app({"DATABASE_URL": db_url})
    yield app
    state_of(app).engine.dispose()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `serve` would have run: the dev server's or gunicorn's arguments."""
    import werkzeug.serving
    from gunicorn.app.base import BaseApplication

    calls: dict[str, Any] = {}

    def run_simple(host: str, port: int, app: Any, **options: Any) -> None:
        calls["dev"] = (host, port, app)

    def run(self: Any) -> None:
        calls["gunicorn"] = self.load()

    monkeypatch.setattr(werkzeug.serving, "run_simple", run_simple)
    monkeypatch.setattr(BaseApplication, "run", run)
    return calls


# -- the secret ------------------------------------------------------------------------------


def test_commands_that_sign_nothing_need_no_secret(microblog_without_secret: Flask) -> None:
    app = microblog_without_secret

    results = {" ".join(args): run(app, *args) for args in (
        ["routes"], ["openapi"], ["db", "status"], ["db", "upgrade"], ["db", "check"])}

    for command, result in results.items():
        assert result.exit_code == 0, (command, result.output)
    assert "/auth/token" in results["routes"].stdout
    assert "Applied" in results["db upgrade"].stdout
    assert "agree" in results["db check"].stdout
    tables = sa.inspect(state_of(app).engine).get_table_names()
    assert {"users", "messages", "follows"} <= set(tables)


def test_without_a_secret_tokens_are_neither_issued_nor_verified() -> None:
    signer = TokenSigner(None, 60)

    for sign in (lambda: signer.issue(1), lambda: signer.verify("x.y.z")):
        with pytest.raises(ConfigurationError, match="Token auth needs TABLEREST_SECRET_KEY"):
            sign()


@pytest.mark.sqlite_only
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["dev", "gunicorn"])
def test_serve_refuses_a_token_app_without_secret(microblog_without_secret: Flask,
                                                  served: dict[str, Any],
                                                  workers: list[str]) -> None:
    result = run(microblog_without_secret, "serve", *workers)

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: This app issues tokens, which are signed with "
                                    "TABLEREST_SECRET_KEY: set it")
    assert served == {}


@pytest.mark.sqlite_only
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_with_a_secret(served: dict[str, Any], db_url: str) -> None:
    from microblog.app import create_app

    app = create_app({"DATABASE_URL": db_url, "TABLEREST_SECRET_KEY": SECRET})

    result = run(app, "serve")

    assert result.exit_code == 0, result.output
    assert served["dev"][2] is app
    state_of(app).engine.dispose()


# -- messages and output ---------------------------------------------------------------------


def test_without_an_app_the_advice_names_tablerest(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("TABLEREST_APP", "FLASK_APP"):
        monkeypatch.delenv(name, raising=False)

    result = CliRunner().invoke(main, ["routes"])

    assert result.exit_code == 2
    assert result.stderr.endswith(
        "Error: Could not locate a Flask application. Use the 'tablerest --app' option, the "
        "'TABLEREST_APP' or 'FLASK_APP' environment variable, or a 'wsgi.py' or 'app.py' file "
        "in the current directory.\n")


@pytest.mark.sqlite_only
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_routes_are_whole_lines_when_piped(db_url: str) -> None:
    from microblog.app import create_app

    app = create_app({"DATABASE_URL": db_url, "TABLEREST_SECRET_KEY": SECRET})

    result = run(app, "routes", env={"COLUMNS": None})  # a pipe: not a terminal

    assert result.exit_code == 0, result.output
    lines = [" ".join(line.replace("│", " ").split()) for line in result.stdout.splitlines()]
    assert "/users/<key>/following/<other> PUT, DELETE users" in lines
    assert "/users/<key>/messages GET, POST, QUERY, FETCH users" in lines
    assert max(len(line) for line in result.stdout.splitlines()) > 80
    state_of(app).engine.dispose()


# -- serve faces a network -------------------------------------------------------------------


WARNING = ("Warning: serving on {host} with the development server, which is not made to face "
           "a network (a slow or stalled client holds a thread forever). Add --workers N to "
           "serve with gunicorn.\n")


@pytest.mark.parametrize(("host", "warns"), [
    ("0.0.0.0", True), ("192.168.1.5", True), ("::", True), ("example.org", True),
    ("127.0.0.1", False), ("127.0.0.2", False), ("localhost", False), ("::1", False),
    ("[::1]", False),
])
def test_serve_warns_off_loopback_without_workers(served: dict[str, Any], host: str,
                                                  warns: bool) -> None:
    app = Flask("plain")

    dev = run(app, "serve", "--host", host)
    gunicorn = run(app, "serve", "--host", host, "--workers", "2")

    assert dev.exit_code == 0 and gunicorn.exit_code == 0
    assert dev.stderr == (WARNING.format(host=host) if warns else "")
    assert gunicorn.stderr == ""
    assert served["dev"] == (host, 5000, app) and served["gunicorn"] is app


# -- serve --db ------------------------------------------------------------------------------


@pytest.fixture
def accounts(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'accounts.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE accounts (id INTEGER PRIMARY KEY, "
                                   "login TEXT, password_hash TEXT, notes TEXT)")
        connection.exec_driver_sql("INSERT INTO accounts VALUES (1, 'ann', 'h1', 'n1')")
    engine.dispose()
    return url


def test_serve_db_show_and_hide(accounts: str, served: dict[str, Any]) -> None:
    result = CliRunner().invoke(main, ["serve", "--db", accounts, "--show",
                                       "accounts.password_hash", "--hide", "notes"])

    assert result.exit_code == 0, result.output
    app = served["dev"][2]
    assert app.test_client().get("/accounts/1").json == {
        "id": 1, "login": "ann", "password_hash": "h1"}
    state_of(app).engine.dispose()


def test_serve_db_prints_the_hidden_columns(accounts: str) -> None:
    code = ("import werkzeug.serving; werkzeug.serving.run_simple = lambda *a, **k: None; "
            "from tablerest.cli import main; main()")

    done = subprocess.run([sys.executable, "-c", code, "serve", "--db", accounts],
                          capture_output=True, text=True, check=False, timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ("tablerest: INFO: Hiding a column of 'accounts' (write-only): "
                           "'password_hash'. --show accounts.COLUMN serves one.\n")
