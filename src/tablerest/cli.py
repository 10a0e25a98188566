"""The ``tablerest`` console command and the ``flask db`` group: a thin shell.

::

    tablerest [--app IMPORT] db init | make MESSAGE [--empty] | upgrade [REV] | downgrade [REV]
                             db status | check | stamp [REV] | refresh [--seed] | reset [--yes]
                             db seed [NAME] [--fake --users N]
    tablerest [--app IMPORT] serve [APP] [--host --port --workers N --reload]
    tablerest serve --db URL [--read-only --tables a,b --exclude c --show t.col --hide col]
    tablerest [--app IMPORT] routes | openapi

The app is found the way ``flask`` finds it: ``--app``, else ``TABLEREST_APP`` or ``FLASK_APP``,
else ``wsgi.py`` or ``app.py`` in the current folder. Each command calls a function of
:mod:`tablerest.migrations` or :mod:`tablerest.seeding`; the library's own errors (and
Alembic's) become one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import click
from alembic.util import CommandError
from click.core import ParameterSource
from flask import Flask, current_app
from flask.cli import AppGroup, NoAppException, ScriptInfo
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import migrations as mig
from . import seeding
from .errors import ConfigurationError, TableRestError
from .extension import state_of
from .openapi import openapi_document
from .serving import is_loopback, log_to_stderr, run_gunicorn

_NO_APP = ("Could not locate a Flask application. Use the 'tablerest --app' option, the "
           "'TABLEREST_APP' or 'FLASK_APP' environment variable, or a 'wsgi.py' or 'app.py' "
           "file in the current directory.")


class _Commands(AppGroup):
    """Commands run in the app's context; library errors become one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (TableRestError, CommandError) as exc:
            raise click.ClickException(" ".join(str(exc).split())) from exc
        except NoAppException as exc:
            # Flask's advice names `flask --app`; under `tablerest`, name our own option.
            if ctx.find_root().command is main and "'flask --app'" in exc.message:
                raise NoAppException(_NO_APP, exc.ctx) from None
            raise


@click.group(cls=_Commands)
@click.option("--app", "app_import", metavar="IMPORT", envvar=["TABLEREST_APP", "FLASK_APP"],
              help="The app: 'module:name', 'module:create_app()' or a path to a .py file; "
                   "default: $TABLEREST_APP, $FLASK_APP, wsgi.py or app.py.")
@click.version_option(package_name="tablerest")
@click.pass_context
def main(ctx: click.Context, app_import: str | None) -> None:
    """tablerest: a REST/JSON API for a relational database."""
    if app_import or not isinstance(ctx.obj, ScriptInfo):
        ctx.obj = ScriptInfo(app_import_path=app_import)


@main.group(cls=_Commands)
def db() -> None:
    """Migrations (Alembic) and seeders."""


def _migrations() -> mig.Migrations:
    return mig.Migrations.for_app(current_app)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _console() -> Console:
    """Rich's console for tables: whole lines when the output is not a terminal (a pipe or a
    file), which Rich would otherwise cut at 80 columns."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=100_000)
    return console


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _steps(steps: list[mig.Step], nothing: str) -> None:
    for step in steps:
        verb = "Applied " if step.upgrade else "Reverted"
        click.echo(f"{verb} {step.revision}  {step.message}")
    if not steps:
        click.echo(nothing)


@db.command()
def init() -> None:
    """Create the migrations folder (env.py, script.py.mako, versions/)."""
    directory = mig.init(mig.migrations_folder(current_app))
    click.echo(f"Created {_shown(directory)}; now run `tablerest db make \"first tables\"`.")


@db.command()
@click.argument("message")
@click.option("--empty", is_flag=True, help="Write a blank migration to fill in by hand.")
def make(message: str, empty: bool) -> None:
    """Write a migration: the difference between the models and the database."""
    made = mig.make(_migrations(), message, empty=empty)
    if made.path is None:
        click.echo("No changes between the models and the database; nothing written.")
        return
    click.echo(f"Wrote {_shown(made.path)}")
    for change in made.changes:
        click.echo(f"  - {change.description}")


@db.command()
def check() -> None:
    """Exit 1 when the models differ from the database (migrate it first)."""
    migrations = _migrations()
    changes = mig.diff(migrations)
    for change in changes:
        click.echo(f"  - {change.description}")
    if not changes:
        click.echo("The models and the database agree.")
        return
    differ = f"The models differ from the database in {_plural(len(changes), 'way')}"
    pending = _pending(migrations)
    if pending:
        # `db make` would refuse a database that is behind: run what is written first.
        raise click.ClickException(
            f"{differ}, and {_plural(pending, 'migration')} {'has' if pending == 1 else 'have'}"
            f" not run: `tablerest db upgrade` runs {'it' if pending == 1 else 'them'}; then "
            "check again.")
    raise click.ClickException(
        f"{differ}; `tablerest db make MESSAGE` writes a migration for "
        f"{'it' if len(changes) == 1 else 'them'}.")


def _pending(migrations: mig.Migrations) -> int:
    """How many migrations have not run (0 without a migrations folder)."""
    try:
        return sum(not row.applied for row in mig.status(migrations))
    except mig.MigrationError:
        return 0


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Run the migrations up to REVISION (default: the latest)."""
    _steps(mig.upgrade(_migrations(), revision), "Already at the latest migration.")


@db.command(context_settings={"ignore_unknown_options": True})
@click.argument("revision", default="-1")
def downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (default -1: one step; base: all)."""
    _steps(mig.downgrade(_migrations(), revision), "Nothing to revert.")


@db.command()
@click.argument("revision", default="head")
def stamp(revision: str) -> None:
    """Mark the database as at REVISION without running migrations (for create_all tables)."""
    mig.stamp(_migrations(), revision)
    click.echo(f"The database is now marked as at {revision}.")


@db.command()
def status() -> None:
    """List the migrations: which have run, which is current."""
    rows = mig.status(_migrations())
    table = Table("migration", "message", "ran", "")
    for row in rows:
        table.add_row(row.revision, row.message, "yes" if row.applied else "no",
                      "<- current" if row.current else "")
    console = _console()
    if rows:
        console.print(table)
    else:
        console.print("No migrations yet: `tablerest db make MESSAGE` writes the first.")


@db.command()
@click.option("--seed", is_flag=True, help="Then run the DatabaseSeeder.")
def refresh(seed: bool) -> None:
    """Revert every migration, run them all again, and optionally seed."""
    reverted, applied = mig.refresh(_migrations())
    _steps(reverted + applied, "No migrations to run.")
    if seed:
        _seed(current_app, None)


@db.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(yes: bool) -> None:
    """Revert every migration: drops the tables they made."""
    url = state_of(current_app).engine.url.render_as_string(hide_password=True)
    if not yes:
        click.confirm(f"Revert every migration of {url}, dropping its tables and rows?",
                      abort=True)
    _steps(mig.reset(_migrations()), "Nothing to revert.")


@db.command()
@click.argument("name", required=False)
@click.option("--fake", is_flag=True, help="Fill users, messages and follows with fake data.")
@click.option("--users", type=click.IntRange(min=0), default=1000, show_default=True,
              help="With --fake: how many users (about 10 messages and 10 follows each).")
@click.option("--random-seed", "seed_value", type=int, default=None,
              help="With --fake: a random seed, for the same data every time.")
def seed(name: str | None, fake: bool, users: int, seed_value: int | None) -> None:
    """Run a seeder: NAME from the app's seeders module (default DatabaseSeeder)."""
    if fake and name:
        raise click.UsageError("Give a seeder NAME or --fake, not both.")
    ctx = click.get_current_context()
    given = [option for option, param in (("--users", "users"), ("--random-seed", "seed_value"))
             if ctx.get_parameter_source(param) is not ParameterSource.DEFAULT]
    if given and not fake:
        raise click.UsageError(f"{' and '.join(given)} only go{'' if len(given) > 1 else 'es'} "
                               "with --fake (fake users, messages and follows); add --fake.")
    if fake:
        _fake(current_app, users, seed_value)
    else:
        _seed(current_app, name)


def _seed(app: Flask, name: str | None) -> None:
    module = seeding.seeders_module_name(app)
    seeder = seeding.find_seeder(module, name or seeding.DEFAULT_SEEDER)
    seeding.run_seeder(state_of(app).engine, seeder)
    click.echo(f"Seeded with {module}.{seeder.__name__}.")


def _fake(app: Flask, users: int, seed_value: int | None) -> None:
    started = time.perf_counter()
    with _progress_bar() as progress:
        seeder = seeding.run_seeder(state_of(app).engine, seeding.FakeDataSeeder,
                                    users=users, seed=seed_value, progress=progress)
    counts = ", ".join(f"{count} {table}" for table, count in seeder.counts.items())
    click.echo(f"Seeded {counts} in {time.perf_counter() - started:.1f} s "
               f"(password: {seeding.FAKE_PASSWORD!r}).")


@contextmanager
def _progress_bar() -> Iterator[seeding.Progress]:
    columns = (TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        tasks: dict[str, Any] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done)

        yield report


# -- serving ---------------------------------------------------------------------------------


def _names(_ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("expected a comma-separated list of table names.", param=param)
    return names


def _columns(_ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[str]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if values and not names:
        raise click.BadParameter("expected COLUMN or TABLE.COLUMN, or a comma list of them.",
                                 param=param)
    return names


@main.command(with_appcontext=False)
@click.argument("app_import", metavar="[APP]", required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="The interface to bind.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Serve with gunicorn and N worker processes (default: the dev server).")
@click.option("--reload", is_flag=True, help="Restart when the code changes.")
@click.option("--db", "db_url", metavar="URL",
              help="Serve this database's tables, reflected: no models needed.")
@click.option("--read-only", is_flag=True,
              help="With --db: no writes; a SQLite file is opened read-only.")
@click.option("--tables", callback=_names, metavar="A,B", help="With --db: only these tables.")
@click.option("--exclude", callback=_names, metavar="C,D", help="With --db: not these tables.")
@click.option("--show", multiple=True, callback=_columns, metavar="[TABLE.]COLUMN",
              help="With --db: serve these columns although named like secrets "
                   "(repeatable, or a comma list; COLUMN alone means in every table).")
@click.option("--hide", multiple=True, callback=_columns, metavar="[TABLE.]COLUMN",
              help="With --db: hide these columns too (same forms as --show).")
@click.option("--postgrest", "postgrest", is_flag=False, flag_value="/rest/v1", default=None,
              metavar="[PREFIX]",
              help="With --db: also serve the PostgREST dialect (at /rest/v1, or PREFIX).")
@click.pass_context
def serve(ctx: click.Context, app_import: str | None, host: str, port: int,
          workers: int | None, reload: bool, db_url: str | None, read_only: bool,
          tables: list[str] | None, exclude: list[str] | None, show: list[str],
          hide: list[str], postgrest: str | None) -> None:
    """Serve the app (or, with --db, an existing database) on HOST:PORT."""
    if db_url is None and (read_only or tables or exclude or show or hide or postgrest):
        raise click.UsageError("--read-only, --tables, --exclude, --show, --hide and "
                               "--postgrest go with --db URL.")
    load: Callable[[], Flask]
    if db_url is not None:
        if app_import:
            raise click.UsageError("Give an APP or --db URL, not both.")
        create_app = _reflection()
        url = db_url

        def load() -> Flask:
            return create_app(url, read_only=read_only, tables=tables, exclude=exclude,
                              show=show, hide=hide, postgrest=postgrest)
    else:
        info = ctx.ensure_object(ScriptInfo)
        if app_import:
            info.app_import_path = app_import

        def load() -> Flask:
            return _servable(info.load_app())
    log_to_stderr()
    if workers is None:
        from werkzeug.serving import run_simple

        app = load()
        if not is_loopback(host):
            click.echo(f"Warning: serving on {host} with the development server, which is not "
                       "made to face a network (a slow or stalled client holds a thread "
                       "forever). Add --workers N to serve with gunicorn.", err=True)
        run_simple(host, port, app, use_reloader=reload, threaded=True)
    else:
        run_gunicorn(load, {"bind": f"{host}:{port}", "workers": workers, "reload": reload,
                         "accesslog": "-"})


def _servable(app: Flask) -> Flask:
    """Refuse to serve an app that issues tokens without a secret to sign them with (other
    commands load it without one: they sign nothing)."""
    with suppress(ConfigurationError):  # an app without tablerest
        state = state_of(app)
        if state.token_signer is not None and not state.settings.secret_key:
            raise click.ClickException(
                "This app issues tokens, which are signed with TABLEREST_SECRET_KEY: set it "
                "(16+ random characters; python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))' makes one).")
    return app


def _reflection() -> Callable[..., Flask]:
    try:
        from .reflection import create_app
    except ImportError as exc:
        raise click.ClickException(
            f"Serving a database by reflection is not available: {exc}.") from exc
    return create_app


@main.command()
def routes() -> None:
    """Every route: its URL rule, methods and resource."""
    app = current_app
    try:
        listed = list(state_of(app).routes)
    except ConfigurationError:
        listed = []
    seen = {rule for rule, _, _ in listed}
    for rule in app.url_map.iter_rules():
        if rule.rule not in seen:
            methods = tuple(sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
            listed.append((rule.rule, methods, rule.endpoint))
    table = Table("rule", "methods", "resource")
    for rule_text, methods, resource in sorted(listed):
        table.add_row(rule_text, ", ".join(methods), resource)
    _console().print(table)


@main.command()
def openapi() -> None:
    """Print the app's OpenAPI 3.1 document (the one served at /openapi.json)."""
    click.echo(json.dumps(openapi_document(current_app), indent=2))
