"""The console, invoked: `tablerest ...` and `flask db ...`, output and database state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from flask import Flask
from flask.cli import ScriptInfo
from sqlalchemy import Column, Integer, MetaData, String, Table

from conftest import rows
from tablerest import TableRest
from tablerest.cli import db, main
from tablerest.extension import state_of
from tablerest.migrations import NAMING_CONVENTION
from tablerest.seeding import Seeder

METADATA = MetaData(naming_convention=NAMING_CONVENTION)
NOTES = Table("notes", METADATA, Column("id", Integer, primary_key=True),
              Column("text", String(100), nullable=False, unique=True))


class NotesSeeder(Seeder):
    def run(self) -> None:
        self.connection.execute(NOTES.insert(), [{"text": "first"}, {"text": "second"}])


class DatabaseSeeder(Seeder):
    def run(self) -> None:
        self.call(NotesSeeder)


def create_app(db_url: str, folder: Path) -> Flask:
    app = Flask(__name__)
    app.config.update(DATABASE_URL=db_url, TABLEREST_MIGRATIONS=str(folder),
                      TABLEREST_SEEDERS=__name__)
    TableRest(app, metadata=METADATA)
    return app


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(db_url, tmp_path / "migrations")
    yield app
    state_of(app).engine.dispose()


Invoke = Callable[..., Result]


@pytest.fixture
def invoke(app: Flask) -> Invoke:
    def invoke(*args: str, input: str | None = None) -> Result:
        info = ScriptInfo(create_app=lambda: app)
        return CliRunner().invoke(main, list(args), obj=info, input=input)

    return invoke


@pytest.fixture
def migrated(invoke: Invoke) -> Invoke:
    for args in (["db", "init"], ["db", "make", "notes"], ["db", "upgrade"]):
        assert invoke(*args).exit_code == 0
    return invoke


def revision_of(made: Result) -> str:
    """The revision id in the name of the file `db make` wrote (year_month_day_rev_slug.py)."""
    path = Path(made.stdout.split("Wrote ")[1].split()[0])
    return path.name.split("_")[3]


def tables(app: Flask) -> set[str]:
    return set(sa.inspect(state_of(app).engine).get_table_names()) - {"alembic_version"}


def test_make_upgrade_and_status(app: Flask, invoke: Invoke, tmp_path: Path) -> None:
    assert invoke("db", "init").exit_code == 0
    assert (tmp_path / "migrations" / "env.py").read_text().count("run_env") == 2
    empty = invoke("db", "status")

    made = invoke("db", "make", "notes table")
    before = invoke("db", "status")
    upgraded = invoke("db", "upgrade")
    after = invoke("db", "status")

    assert "No migrations yet" in empty.stdout
    assert made.exit_code == 0, made.output
    assert "Wrote " in made.stdout and "new table 'notes'" in made.stdout
    revision = revision_of(made)
    assert f"│ {revision} │ notes table │ no  │" in before.stdout
    assert "current" not in before.stdout
    assert upgraded.stdout == f"Applied  {revision}  notes table\n"
    assert f"│ {revision} │ notes table │ yes │ <- current │" in after.stdout
    assert tables(app) == {"notes"}


def test_make_empty_and_no_changes(migrated: Invoke, tmp_path: Path) -> None:
    unchanged = migrated("db", "make", "nothing")
    blank = migrated("db", "make", "--empty", "by hand")

    assert unchanged.stdout == "No changes between the models and the database; nothing written.\n"
    assert blank.exit_code == 0 and "by_hand.py" in blank.stdout
    assert len(list((tmp_path / "migrations" / "versions").glob("*.py"))) == 2


def test_downgrade_one_step_by_default(app: Flask, migrated: Invoke) -> None:
    migrated("db", "make", "--empty", "second")
    migrated("db", "upgrade")

    first = migrated("db", "downgrade")
    second = migrated("db", "downgrade", "-1")
    nothing = migrated("db", "downgrade", "base")

    assert first.stdout.startswith("Reverted") and "second" in first.stdout
    assert "notes" in second.stdout
    assert nothing.stdout == "Nothing to revert.\n"
    assert tables(app) == set()


def test_refresh_with_seed(app: Flask, migrated: Invoke) -> None:
    migrated("db", "seed")

    result = migrated("db", "refresh", "--seed")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("Reverted")
    assert result.stdout.splitlines()[1].startswith("Applied")
    assert "Seeded with test_cli.DatabaseSeeder." in result.stdout
    assert rows(state_of(app).engine, "SELECT text FROM notes ORDER BY id") == [
        {"text": "first"}, {"text": "second"}]


def test_seed_by_name_and_unknown_name(app: Flask, migrated: Invoke) -> None:
    named = migrated("db", "seed", "NotesSeeder")
    unknown = migrated("db", "seed", "Nope")
    both = migrated("db", "seed", "NotesSeeder", "--fake")

    assert named.stdout == "Seeded with test_cli.NotesSeeder.\n"
    assert unknown.exit_code == 1
    assert unknown.stderr == ("Error: No seeder 'Nope' in 'test_cli' "
                              "(seeders there: DatabaseSeeder, NotesSeeder).\n")
    assert both.exit_code == 2 and "NAME or --fake, not both" in both.stderr


@pytest.mark.parametrize("args", [["--users", "5"], ["--random-seed", "1"],
                                  ["NotesSeeder", "--users", "0"]], ids=" ".join)
def test_seed_refuses_fake_options_without_fake(app: Flask, migrated: Invoke,
                                                args: list[str]) -> None:
    result = migrated("db", "seed", *args)

    assert result.exit_code == 2
    assert f"{args[-2]} only goes with --fake" in result.stderr
    assert rows(state_of(app).engine, "SELECT count(*) AS n FROM notes") == [{"n": 0}]


def test_reset_asks_first(app: Flask, migrated: Invoke) -> None:
    refused = migrated("db", "reset", input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.stderr
    assert tables(app) == {"notes"}

    confirmed = migrated("db", "reset", input="y\n")
    assert confirmed.exit_code == 0 and "Reverted" in confirmed.stdout
    assert tables(app) == set()

    migrated("db", "upgrade")
    assert migrated("db", "reset", "--yes").exit_code == 0
    assert tables(app) == set()


def test_check(invoke: Invoke) -> None:
    invoke("db", "init")
    differ = invoke("db", "check")  # no migration written yet
    invoke("db", "make", "notes")
    invoke("db", "upgrade")
    agree = invoke("db", "check")

    assert agree.exit_code == 0 and "agree" in agree.stdout
    assert differ.exit_code == 1 and "new table 'notes'" in differ.stdout
    assert differ.stderr == ("Error: The models differ from the database in 1 way; "
                             "`tablerest db make MESSAGE` writes a migration for it.\n")


def test_check_behind_advises_upgrade(app: Flask, migrated: Invoke) -> None:
    migrated("db", "downgrade", "base")

    behind = migrated("db", "check")
    made = migrated("db", "make", "again")  # what the old advice led to
    migrated("db", "upgrade")
    after = migrated("db", "check")

    assert behind.exit_code == 1 and "new table 'notes'" in behind.stdout
    assert behind.stderr == ("Error: The models differ from the database in 1 way, and 1 "
                             "migration has not run: `tablerest db upgrade` runs it; then "
                             "check again.\n")
    assert made.exit_code == 1 and "not up to date" in made.stderr
    assert after.exit_code == 0 and "agree" in after.stdout


def _ahead(invoke: Invoke, folder: Path) -> None:
    for path in (folder / "versions").glob("*.py"):
        path.unlink()


def _behind(invoke: Invoke, folder: Path) -> None:
    invoke("db", "make", "--empty", "not run yet")


@pytest.mark.parametrize(("prepare", "args", "message"), [
    (None, ["db", "status"], "Error: No migrations folder at '{folder}' (expected env.py there); "
                             "create one with `tablerest db init`, or point "
                             "TABLEREST_MIGRATIONS at it."),
    ("migrate", ["db", "upgrade", "nope"],
     "Error: Unknown revision 'nope': `tablerest db status` lists the migrations."),
    ("migrate", ["db", "downgrade", "nope"],
     "Error: Unknown revision 'nope': `tablerest db status` lists the migrations."),
    (_ahead, ["db", "upgrade"], "Error: The database is at revision '{revision}', which is not "
                                "in '{folder}/versions': the database is ahead of this code; "
                                "update the code, or downgrade with the code that made that "
                                "migration."),
    (_behind, ["db", "make", "more"], "Error: Target database is not up to date."),
    ("init", ["db", "downgrade"],
     "Error: The database has no migrations applied; nothing to downgrade."),
], ids=["no-folder", "unknown-upgrade", "unknown-downgrade", "db-ahead", "db-behind",
        "nothing-to-downgrade"])
def test_errors_are_one_line(invoke: Invoke, tmp_path: Path, prepare: Any, args: list[str],
                             message: str) -> None:
    folder = tmp_path / "migrations"
    revision = ""
    if prepare is not None:
        invoke("db", "init")
    if prepare not in (None, "init"):
        revision = revision_of(invoke("db", "make", "notes"))
        invoke("db", "upgrade")
    if callable(prepare):
        prepare(invoke, folder)

    result = invoke(*args)

    assert result.exit_code == 1
    assert result.stderr == message.format(folder=folder, revision=revision) + "\n"
    assert result.stdout == ""


def test_flask_db_group(app: Flask, tmp_path: Path) -> None:
    app.cli.add_command(db)
    runner = app.test_cli_runner()

    assert runner.invoke(args=["db", "init"]).exit_code == 0
    assert runner.invoke(args=["db", "make", "notes"]).exit_code == 0
    upgraded = runner.invoke(args=["db", "upgrade"])
    missing = runner.invoke(args=["db", "upgrade", "nope"])

    assert upgraded.exit_code == 0 and "notes" in upgraded.stdout
    assert tables(app) == {"notes"}
    assert missing.exit_code == 1 and missing.stderr.startswith("Error: Unknown revision")


APP_MODULE = '''
import os
from flask import Flask
from sqlalchemy import Column, Integer, MetaData, Table
from tablerest import TableRest

metadata = MetaData()
Table("things", metadata, Column("id", Integer, primary_key=True))


def create_app():
    app = Flask(__name__)
    app.config["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]
    TableRest(app, metadata=metadata)
    return app
'''


@pytest.mark.sqlite_only
@pytest.mark.parametrize("variable", ["TABLEREST_APP", "FLASK_APP", "--app"])
def test_finds_the_app_like_flask(tmp_path: Path, variable: str) -> None:
    (tmp_path / "things.py").write_text(APP_MODULE)
    env = {**os.environ, "TEST_DATABASE_URL": f"sqlite:///{tmp_path / 'things.db'}"}
    env.pop("FLASK_APP", None)
    env.pop("TABLEREST_APP", None)
    prefix = ["--app", "things:create_app"] if variable == "--app" else []
    if variable != "--app":
        env[variable] = "things:create_app"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from tablerest.cli import main; main()", *prefix]
        return subprocess.run([*command, *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, check=False)

    init = run("db", "init")
    made = run("db", "make", "things")  # the models and the database both come from the app

    assert init.returncode == 0, init.stderr
    assert (tmp_path / "migrations" / "env.py").exists()  # beside the single-module app
    assert made.returncode == 0, made.stderr
    assert "new table 'things'" in made.stdout


def test_routes(app: Flask, invoke: Invoke) -> None:
    from microblog.app import create_app as create_microblog

    microblog = create_microblog({"DATABASE_URL": state_of(app).engine.url.render_as_string(
        hide_password=False), "TABLEREST_SECRET_KEY": "x" * 32})
    info = ScriptInfo(create_app=lambda: microblog)

    result = CliRunner().invoke(main, ["routes"], obj=info, env={"COLUMNS": "120"})

    assert result.exit_code == 0, result.output
    lines = [" ".join(line.replace("│", " ").split()) for line in result.stdout.splitlines()]
    assert "/users GET, POST, QUERY, FETCH users" in lines
    assert "/users/query POST users" in lines
    assert "/users/<key> GET, PATCH, PUT, DELETE users" in lines
    assert "/auth/token POST auth" in lines
    assert "/static/<path:filename> GET static" in lines
    assert "/openapi.json GET tablerest.openapi" in lines
    state_of(microblog).engine.dispose()


def test_openapi_prints_the_served_document(app: Flask) -> None:
    from microblog.app import create_app as create_microblog

    microblog = create_microblog({"DATABASE_URL": state_of(app).engine.url.render_as_string(
        hide_password=False), "TABLEREST_SECRET_KEY": "x" * 32})
    info = ScriptInfo(create_app=lambda: microblog)

    result = CliRunner().invoke(main, ["openapi"], obj=info)

    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == microblog.test_client().get("/openapi.json").json
    assert "/users/{key}/timeline" in printed["paths"]
    state_of(microblog).engine.dispose()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `serve` would have run: the dev server's or gunicorn's arguments."""
    import werkzeug.serving
    from gunicorn.app.base import BaseApplication

    calls: dict[str, Any] = {}

    def run_simple(host: str, port: int, app: Any, **options: Any) -> None:
        calls["dev"] = (host, port, app, options)

    def run(self: Any) -> None:
        calls["gunicorn"] = ({key: self.cfg.settings[key].get() for key in
                              ("bind", "workers", "reload")}, self.load())

    monkeypatch.setattr(werkzeug.serving, "run_simple", run_simple)
    monkeypatch.setattr(BaseApplication, "run", run)
    return calls


@pytest.mark.sqlite_only
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_dev_server_binds_localhost(app: Flask, invoke: Invoke,
                                          served: dict[str, Any]) -> None:
    result = invoke("serve")

    assert result.exit_code == 0, result.output
    host, port, served_app, options = served["dev"]
    assert (host, port, served_app) == ("127.0.0.1", 5000, app)
    assert options["use_reloader"] is False


@pytest.mark.sqlite_only
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("reload", [False, True], ids=["preloaded", "reload"])
def test_serve_with_workers_uses_gunicorn(app: Flask, invoke: Invoke, served: dict[str, Any],
                                          reload: bool) -> None:
    result = invoke("serve", "--workers", "3", "--port", "8001", *(["--reload"] * reload))

    assert result.exit_code == 0, result.output
    settings, served_app = served["gunicorn"]
    assert settings == {"bind": ["127.0.0.1:8001"], "workers": 3, "reload": reload}
    assert served_app is app


@pytest.mark.sqlite_only
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serve_db_reflects(invoke: Invoke, served: dict[str, Any],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    made: dict[str, Any] = {}
    reflected = Flask("reflected")

    def create_app(url: str, **options: Any) -> Flask:
        made.update(url=url, **options)
        return reflected

    module = types.ModuleType("tablerest.reflection")
    module.create_app = create_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tablerest.reflection", module)

    result = invoke("serve", "--db", "sqlite:///x.db", "--read-only", "--tables", "a, b",
                    "--exclude", "c", "--show", "a.salt,pin", "--show", "token", "--hide",
                    "b.notes", "--postgrest")

    assert result.exit_code == 0, result.output
    assert made == {"url": "sqlite:///x.db", "read_only": True, "tables": ["a", "b"],
                    "exclude": ["c"], "show": ["a.salt", "pin", "token"], "hide": ["b.notes"],
                    "postgrest": "/rest/v1"}
    assert served["dev"][2] is reflected


@pytest.mark.sqlite_only
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("args", "code", "message"), [
    (["--tables", "a"], 2, "--read-only, --tables, --exclude, --show, --hide and --postgrest "
                           "go with --db URL."),
    (["--show", "a.b"], 2, "--read-only, --tables, --exclude, --show, --hide and --postgrest "
                           "go with"),
    (["--db", "sqlite://", "--tables", " , "], 2, "expected a comma-separated list"),
    (["--db", "sqlite://", "--hide", ","], 2, "expected COLUMN or TABLE.COLUMN"),
    (["--port", "0"], 2, "0 is not in the range"),
    (["--db", "sqlite://"], 1, "Error: Serving a database by reflection is not available"),
], ids=["tables-without-db", "show-without-db", "empty-tables", "empty-hide", "bad-port",
        "no-reflection"])
def test_serve_refuses_bad_options(invoke: Invoke, served: dict[str, Any],
                                   monkeypatch: pytest.MonkeyPatch, args: list[str], code: int,
                                   message: str) -> None:
    monkeypatch.setitem(sys.modules, "tablerest.reflection", None)  # import fails

    result = invoke("serve", *args)

    assert result.exit_code == code
    assert message in result.stderr
    assert served == {}
