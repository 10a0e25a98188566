"""Migrations: plain functions over Alembic, no ``alembic.ini`` needed.

::

    migrations = Migrations.for_app(app)     # the folder, the engine and the models' MetaData
    made = make(migrations, "add bio")       # autogenerate: diff the models and the database
    upgrade(migrations)                      # to "head"
    downgrade(migrations, "-1")              # one step back
    for row in status(migrations): ...

The migrations folder holds ``env.py`` (two lines: ``from tablerest.migrations import run_env``
and ``run_env()``), ``script.py.mako`` and ``versions/``; :func:`init` writes them. Which folder:
``app.config["TABLEREST_MIGRATIONS"]`` (relative to the current folder), else
``migrations`` beside the app's package (``microblog/app.py`` -> ``./migrations`` next to the
``microblog/`` folder), or beside a single-module app.

Every migration runs in its own transaction. On PostgreSQL DDL is transactional, so a migration
that fails half way leaves the schema as it was. On SQLite tablerest's engines open real
transactions, so the same holds, and ``ALTER`` is done in Alembic's batch mode (the table is
copied); foreign keys are switched off while a migration runs (so copying a table does not
cascade) and checked before it commits.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, MetaData
from sqlalchemy.exc import DBAPIError

from .autogen import Change, describe, render_item
from .database import untimed, writing
from .errors import TableRestError

if TYPE_CHECKING:
    from alembic.config import Config
    from flask import Flask

CONFIG_KEY = "TABLEREST_MIGRATIONS"
# Keys of ``Config.attributes``: how the functions below hand env.py what it needs.
_CONNECTION = "tablerest.connection"
_METADATA = "tablerest.metadata"
_APPLIED = "tablerest.applied"

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""A naming convention for ``MetaData(naming_convention=...)``: named constraints can be
dropped later, which SQLite's batch mode needs."""

ENV_PY = '''\
"""Alembic's environment for this app: tablerest supplies the connection and the models."""

from tablerest.migrations import run_env

run_env()
'''

SCRIPT_PY_MAKO = '''\
"""${message}

Revision ID: ${up_revision}
Revises:${(" " + comma(down_revision)) if down_revision else ""}
Create Date: ${create_date}
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''


class MigrationError(TableRestError):
    """A migration cannot run: no folder, an unknown revision, a database ahead of the code."""


@dataclass(frozen=True)
class Migrations:
    """Where the migrations live and what they run against.

    :param directory: the migrations folder (``env.py``, ``script.py.mako``, ``versions/``).
    :param engine: the database to migrate.
    :param metadata: the models' ``MetaData``; only :func:`make` with autogenerate needs it.
    """

    directory: Path
    engine: Engine
    metadata: MetaData | None = None

    @classmethod
    def for_app(cls, app: Flask) -> Migrations:
        """The migrations of an app that uses tablerest (see the module docstring)."""
        from .extension import state_of

        state = state_of(app)
        return cls(migrations_folder(app), state.engine, state.metadata)


@dataclass(frozen=True)
class MadeMigration:
    """What :func:`make` wrote: the file (None when nothing changed) and what it contains."""

    path: Path | None
    revision: str | None
    changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True)
class MigrationState:
    """One migration of :func:`status`: has it run, is it the database's current one."""

    revision: str
    message: str
    applied: bool
    current: bool


@dataclass(frozen=True)
class Step:
    """One migration applied (``upgrade``) or reverted by :func:`upgrade` / :func:`downgrade`."""

    revision: str
    message: str
    upgrade: bool


def migrations_folder(app: Flask) -> Path:
    """``app.config["TABLEREST_MIGRATIONS"]``, else ``migrations`` beside the app's package."""
    configured = app.config.get(CONFIG_KEY)
    if configured:
        return Path(str(configured)).resolve()
    root = Path(app.root_path)
    if (root / "__init__.py").exists():
        return root.parent / "migrations"
    return root / "migrations"


def init(directory: Path) -> Path:
    """Write ``env.py``, ``script.py.mako`` and ``versions/`` into ``directory``."""
    if (directory / "env.py").exists():
        raise MigrationError(f"'{directory}' already holds migrations (env.py exists).")
    (directory / "versions").mkdir(parents=True, exist_ok=True)
    (directory / "env.py").write_text(ENV_PY)
    (directory / "script.py.mako").write_text(SCRIPT_PY_MAKO)
    return directory


def make(migrations: Migrations, message: str, *, empty: bool = False) -> MadeMigration:
    """Write a migration: autogenerated from the models against the database, or blank.

    The database must be at the latest migration. When autogenerate finds no difference,
    nothing is written and ``path`` is None.
    """
    config = _config(migrations)
    (migrations.directory / "versions").mkdir(exist_ok=True)
    if empty:
        written = command.revision(config, message=message)
        return _made(written, [])
    _require_metadata(migrations)
    _refuse_unknown_current(migrations, config)
    changes: list[Change] = []

    def collect(_context: MigrationContext, _revision: Any, directives: list[Any]) -> None:
        script = directives[0]
        if script.upgrade_ops.is_empty():
            directives[:] = []
            return
        changes.extend(describe(script.upgrade_ops.ops))
        script.downgrade_ops = script.upgrade_ops.reverse()  # with the names given above

    with _connected(migrations, config), _expression_indexes():
        written = command.revision(config, message=message, autogenerate=True,
                                   process_revision_directives=collect)
    return _made(written, changes)


def diff(migrations: Migrations) -> list[Change]:
    """What autogenerate would write now: the models against the database, nothing written.

    Empty when the database (migrated to the latest) matches the models; CI can check that
    the committed migrations and the models agree.
    """
    from alembic.autogenerate import produce_migrations

    metadata = _require_metadata(migrations)
    with migrations.engine.connect() as connection, _expression_indexes():
        context = MigrationContext.configure(connection, opts={
            "compare_type": True, "target_metadata": metadata, "render_as_batch": True})
        script = produce_migrations(context, metadata)
    assert script.upgrade_ops is not None
    return list(describe(script.upgrade_ops.ops))


def upgrade(migrations: Migrations, revision: str = "head") -> list[Step]:
    """Run the migrations up to ``revision`` (default: the latest); return the steps run."""
    config = _config(migrations)
    _refuse_unknown_current(migrations, config)
    with _connected(migrations, config), _revision_errors(revision), _failures(config):
        command.upgrade(config, revision)
    applied: list[Step] = config.attributes[_APPLIED]
    return applied


def downgrade(migrations: Migrations, revision: str = "-1") -> list[Step]:
    """Revert migrations down to ``revision`` (default: one step; ``base``: all of them)."""
    config = _config(migrations)
    current = _refuse_unknown_current(migrations, config)
    if not current:
        if revision == "base":
            return []
        raise MigrationError("The database has no migrations applied; nothing to downgrade.")
    with _connected(migrations, config), _revision_errors(revision), _failures(config):
        command.downgrade(config, revision)
    reverted: list[Step] = config.attributes[_APPLIED]
    return reverted


def stamp(migrations: Migrations, revision: str = "head") -> None:
    """Record ``revision`` as the database's current one without running anything.

    For a database whose tables were made another way (``create_all``) before migrations.
    """
    config = _config(migrations)
    with _connected(migrations, config), _revision_errors(revision):
        command.stamp(config, revision)


def reset(migrations: Migrations) -> list[Step]:
    """Revert every migration: the tables they made are dropped."""
    return downgrade(migrations, "base")


def refresh(migrations: Migrations) -> tuple[list[Step], list[Step]]:
    """Revert every migration, then run them all again."""
    return reset(migrations), upgrade(migrations)


def status(migrations: Migrations) -> list[MigrationState]:
    """Every migration, oldest first: whether it has run, and which are current."""
    config = _config(migrations)
    current = _refuse_unknown_current(migrations, config)
    script = ScriptDirectory.from_config(config)
    applied = {rev.revision for rev in script.iterate_revisions(current, "base")
               if rev is not None} if current else set()
    return [
        MigrationState(rev.revision, rev.doc or "", rev.revision in applied,
                       rev.revision in current)
        for rev in reversed(list(script.walk_revisions()))
    ]


def current_revisions(migrations: Migrations) -> tuple[str, ...]:
    """The revisions the database is at (empty when no migration has run)."""
    with migrations.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_heads()


def run_env() -> None:
    """The whole ``env.py`` of a migrations folder: configure Alembic and run.

    The connection and the ``MetaData`` come from the functions of this module (which the
    ``tablerest db`` and ``flask db`` commands call), not from an ini file.
    """
    from alembic import context

    config = context.config
    connection: Connection | None = config.attributes.get(_CONNECTION)
    if connection is None or context.is_offline_mode():
        raise MigrationError(
            "This migrations folder runs under tablerest: use `tablerest db ...` or "
            "`flask db ...` rather than the alembic command."
        )
    sqlite = connection.dialect.name == "sqlite"
    applied: list[Step] = config.attributes.setdefault(_APPLIED, [])

    def record(ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any],
               run_args: Mapping[str, Any]) -> None:
        if sqlite:
            _check_foreign_keys(ctx.connection, step.up_revision_id)
        revision = step.up_revision
        message = revision.doc if isinstance(revision, Script) else ""
        applied.append(Step(step.up_revision_id or "", message or "", step.is_upgrade))

    context.configure(
        connection=connection,
        target_metadata=config.attributes.get(_METADATA),
        render_as_batch=True,  # the same migration file runs on SQLite and PostgreSQL
        compare_type=True,
        transaction_per_migration=True,
        # tablerest's SQLite engines emit BEGIN themselves, so SQLite DDL rolls back too.
        transactional_ddl=True if sqlite else None,
        render_item=render_item,
        on_version_apply=record,
    )
    with context.begin_transaction():
        context.run_migrations()


# -- helpers ---------------------------------------------------------------------------------


def _config(migrations: Migrations) -> Config:
    from alembic.config import Config

    directory = migrations.directory
    if not (directory / "env.py").is_file():
        raise MigrationError(
            f"No migrations folder at '{directory}' (expected env.py there); create one with "
            "`tablerest db init`, or point TABLEREST_MIGRATIONS at it."
        )
    config = Config(cmd_opts=argparse.Namespace(quiet=True))
    config.set_main_option("script_location", str(directory))
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes[_METADATA] = migrations.metadata
    config.attributes[_APPLIED] = []
    return config


def _require_metadata(migrations: Migrations) -> MetaData:
    if migrations.metadata is None:
        raise MigrationError(
            "Autogenerate needs the models' MetaData: pass TableRest(metadata=Base.metadata) "
            "or add a resource; or write a blank migration with --empty."
        )
    return migrations.metadata


@contextmanager
def _connected(migrations: Migrations, config: Config) -> Iterator[Connection]:
    """A connection for env.py; on SQLite with foreign keys off (restored afterwards)."""
    with migrations.engine.connect() as connection, writing():
        sqlite = connection.dialect.name == "sqlite"
        untimed(connection)
        if sqlite:  # a PRAGMA outside any transaction, or SQLite ignores it
            _driver_execute(connection, "PRAGMA foreign_keys=OFF")
        config.attributes[_CONNECTION] = connection
        try:
            yield connection
            if connection.in_transaction():
                connection.commit()
        finally:
            config.attributes.pop(_CONNECTION, None)
            if connection.in_transaction():
                connection.rollback()
            if sqlite:
                _driver_execute(connection, "PRAGMA foreign_keys=ON")


@contextmanager
def _expression_indexes() -> Iterator[None]:
    """Autogenerate without the warnings that SQLite cannot reflect an index on an
    expression (``lower(name)``): such an index is compared on PostgreSQL only, and is
    written into migrations by hand."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Skipped unsupported reflection of expression-based index")
        warnings.filterwarnings(
            "ignore", message="autogenerate skipping metadata-specified expression-based")
        yield


def _driver_execute(connection: Connection, sql: str) -> None:
    dbapi = connection.connection.driver_connection
    assert dbapi is not None
    dbapi.execute(sql)


def _check_foreign_keys(connection: Connection | None, revision: str | None) -> None:
    assert connection is not None
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({f"{row[0]!r} -> {row[2]!r}" for row in broken})
        raise MigrationError(
            f"Migration {revision!r} leaves {len(broken)} rows whose foreign key points at a "
            f"missing row ({', '.join(tables)}); it was rolled back."
        )


def _refuse_unknown_current(migrations: Migrations, config: Config) -> tuple[str, ...]:
    current = current_revisions(migrations)
    script = ScriptDirectory.from_config(config)
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        raise MigrationError(
            f"The database is at revision {unknown[0]!r}, which is not in "
            f"'{migrations.directory / 'versions'}': the database is ahead of this code; "
            "update the code, or downgrade with the code that made that migration."
        )
    return current


@contextmanager
def _revision_errors(revision: str) -> Iterator[None]:
    try:
        yield
    except CommandError as exc:
        if "Can't locate revision" in str(exc) or "No such revision" in str(exc):
            raise MigrationError(
                f"Unknown revision {revision!r}: `tablerest db status` lists the migrations."
            ) from exc
        raise


@contextmanager
def _failures(config: Config) -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        done: list[Step] = config.attributes[_APPLIED]
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise MigrationError(
            f"A migration failed and was rolled back, after {len(done)} that succeeded: "
            f"{type(exc.orig).__name__}: {reason}"
        ) from exc


def _made(written: Any, changes: list[Change]) -> MadeMigration:
    if isinstance(written, list):
        written = written[0] if written else None
    if written is None:
        return MadeMigration(None, None, changes)
    return MadeMigration(Path(written.path), written.revision, changes)
