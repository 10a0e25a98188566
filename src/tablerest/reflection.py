"""An existing database -> resources, with no models: ``tablerest serve --db URL``.

::

    app = tablerest.reflect("sqlite:///Chinook.sqlite", read_only=True)

Every table and view of the database's default schema becomes a resource with the whole
generic contract. Reflection happens once, at start-up.

Resources
    A resource is named exactly as the database spells its table (``Album``,
    ``playlist_track``, ``Order Details``); clients percent-encode it like any path segment
    (``/Order%20Details``). Only a name that cannot be one path segment changes: each ``/``,
    ``\\``, ``<``, ``>`` and control character becomes ``_``, and a name of only dots (``.``,
    ``..``) becomes underscores. If two tables then share a name, start-up stops and asks to
    exclude one. Field names are the column names, unchanged.

Keys and writes
    Keys are the primary key columns in order; a composite key is ``a,b`` in the URL
    (``/PlaylistTrack/1,3402``). Views and tables without a primary key are read-only: they
    have list routes only, and writes are 405 with ``Allow``; ``read_only=True`` makes every
    resource so, and opens the database read-only (a SQLite file with ``mode=ro``). A key
    the database assigns (SQLite ``INTEGER PRIMARY KEY``, PostgreSQL ``serial`` or identity,
    a server default) is read-only; any other key is required on create. Validation comes
    from the reflected types, nullability and lengths.

Relations
    From foreign keys, named per resource: see ``reflected_names``.

Secret columns
    A column named like a secret is hidden: write-only, never in an item, a list, a CSV or
    NDJSON export or an include, and a filter, sort or ``fields`` naming it is 400. The name is
    split into lower-cased words at anything but letters and digits, at case changes and
    between letters and digits (``PASSWORD_HASH2`` -> password, hash, 2; ``apiKey`` -> api,
    key). It is a secret when the words, joined, contain ``password``, ``passwd``, ``pwd``,
    ``secret`` (not ``secretary``), ``token``, ``apikey`` or ``privatekey`` (``api_key``,
    ``clientsecret``, ``hashedpassword``, ``prompt_tokens``); or when a word is ``salt``,
    ``otp``, ``totp``, ``hotp``, ``pin``, ``hash``, ``hashed`` or ``hashes``, or begins with
    ``session`` (``pin_code``, ``user_pin``, ``file_hash``, ``session_id``, ``SessionKey`` --
    but not ``Shipping``, ``opinion``, ``hashtag``, ``pinned``, nor the one-word ``pincode`` or
    ``usersession``). ``show`` (``--show``) serves such a column anyway and ``hide``
    (``--hide``) hides another: ``column`` in every table, ``table.column`` in one (it wins
    over ``column``). A table whose key would be hidden is not served at all, since a key is in
    every item URL, ``Location`` and cursor; showing the key serves it. Hidden columns, and
    tables left out, are logged at start-up (logger ``tablerest``). Only names are seen: a
    view that renames a secret (``api_key AS key_alias``) serves it; hide such columns.

Keys that are not URL segments
    A row whose key is empty or contains ``/`` (or, in a composite key, ``,``) is listed,
    paged and included like any other, but has no item URL, so it cannot be read, changed or
    deleted one by one: ``/codes/`` is 404, and ``%2F`` is decoded before routing, so
    ``/codes/a%2Fb`` is ``/codes/a/b``: 404, or, when ``b`` is a relation's name, that
    relation of the row ``a``. ``//`` is not merged (``/codes//uses`` is 404, not
    ``/codes/uses``). A new key with ``/`` (or ``,`` in a composite key) is 422.

Values
    Datetimes stored without a zone are UTC; on SQLite see ``sqlite_layout``. Foreign keys
    are enforced, SQLite included.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import Engine, MetaData, Table
from sqlalchemy.exc import SQLAlchemyError

from .database import create_engine
from .errors import ConfigurationError
from .extension import TableRest
from .reflected_names import describe_relations, url_segment
from .resource import Resource
from .schema import RelationInfo
from .secret_columns import hidden_columns
from .settings import build_settings, load_environment, normalise_url
from .sqlite_layout import settle_sqlite

log = logging.getLogger("tablerest")


# -- the reflected database ------------------------------------------------------------------


@dataclass
class ReflectedDatabase:
    """The tables and views to serve, their resource names, relations and hidden columns."""

    metadata: MetaData
    names: dict[Table, str]
    views: frozenset[str]
    relations: dict[Table, dict[str, RelationInfo]]
    hidden: dict[Table, tuple[str, ...]] = field(default_factory=dict)
    #: Tables not served because a key column would be hidden: table name -> those columns.
    skipped: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def resources(self, read_only: bool = False) -> list[Resource]:
        """One ``Resource`` per table and view, relations set, in name order."""
        made = []
        for table, name in sorted(self.names.items(), key=lambda item: item[1]):
            writes = not read_only and table.name not in self.views
            made.append(Resource(table=table, name=name, allow_writes=writes,
                                 table_relations=self.relations[table],
                                 hidden=self.hidden.get(table, ())))
        return made

    def log_hidden(self) -> None:
        """One line per table with hidden columns, and one per table left out for them."""
        for table, columns in sorted(self.hidden.items(), key=lambda item: item[0].name):
            if columns:
                log.info("Hiding %s of %r (write-only): %s. --show %s.COLUMN serves one.",
                         "a column" if len(columns) == 1 else "columns", table.name,
                         ", ".join(map(repr, columns)), table.name)
        for name, columns in sorted(self.skipped.items()):
            log.warning("Not serving %r: its key %s %s %s hidden (named like a secret, or by "
                        "--hide), but a key is in every item URL, Location and cursor. --show "
                        "%s serves the table.", name,
                        "column" if len(columns) == 1 else "columns",
                        ", ".join(map(repr, columns)), "is" if len(columns) == 1 else "are",
                        ",".join(f"{name}.{column}" for column in columns))


def _choose(available: Sequence[str], tables: Sequence[str] | None,
            exclude: Sequence[str] | None) -> list[str]:
    known = set(available)
    for option, names in (("tables", tables), ("exclude", exclude)):
        unknown = [name for name in names or () if name not in known]
        if unknown:
            raise ConfigurationError(
                f"The {option} option names {', '.join(map(repr, unknown))}, but the database "
                "has no such table or view (names are case-sensitive)."
            )
    chosen = list(tables) if tables is not None else list(available)
    dropped = set(exclude or ())
    return [name for name in dict.fromkeys(chosen) if name not in dropped]


def _check_columns(tables: Sequence[Table], show: Collection[str],
                   hide: Collection[str]) -> None:
    named = {name for table in tables for column in table.columns
             for name in (str(column.name), f"{table.name}.{column.name}")}
    for option, entries in (("show", show), ("hide", hide)):
        unknown = sorted(set(entries) - named)
        if unknown:
            raise ConfigurationError(
                f"The {option} option names {', '.join(map(repr, unknown))}, but no served "
                "table or view has such a column (give COLUMN or TABLE.COLUMN, spelt as the "
                "database spells them)."
            )


def reflect_database(engine: Engine, *, tables: Sequence[str] | None = None,
                     exclude: Sequence[str] | None = None, show: Collection[str] = (),
                     hide: Collection[str] = ()) -> ReflectedDatabase:
    """Reflect the tables and views of ``engine``'s default schema that are to be served.

    :param tables: serve only these (exact names); default: every table and view.
    :param exclude: do not serve these.
    :param show: columns not to hide although named like secrets (``column``, or
        ``table.column``).
    :param hide: more columns to hide.
    """
    metadata = MetaData()
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        views = inspector.get_view_names()
        with contextlib.suppress(NotImplementedError):  # no materialized views in the dialect
            views += inspector.get_materialized_view_names()
        available = [*inspector.get_table_names(), *views]
        chosen = _choose(available, tables, exclude)
        if not chosen:
            raise ConfigurationError(
                f"There is nothing to serve in {_shown(engine)}: it has no tables or views"
                + (" left after --tables/--exclude." if tables or exclude else ".")
            )
        metadata.reflect(connection, only=chosen, views=True)
        served = [metadata.tables[name] for name in chosen]
        if connection.dialect.name == "sqlite":
            settle_sqlite(connection, served)
    _check_columns(served, show, hide)
    hidden = {table: hidden_columns(table, show, hide) for table in served}
    skipped = {table.name: keys for table in served
               if (keys := tuple(c.name for c in table.primary_key.columns
                                 if c.name in hidden[table]))}
    served = [table for table in served if table.name not in skipped]
    if not served:
        raise ConfigurationError(
            f"There is nothing to serve in {_shown(engine)}: every table's key is named like "
            "a secret; --show TABLE.COLUMN serves one.")
    names: dict[Table, str] = {}
    seen: dict[str, str] = {}
    for table in served:
        name = url_segment(table.name)
        if name in seen:
            raise ConfigurationError(
                f"The tables {seen[name]!r} and {table.name!r} would both be served at "
                f"/{name}; exclude one of them."
            )
        seen[name] = table.name
        names[table] = name
    return ReflectedDatabase(metadata, names, frozenset(views), describe_relations(names),
                             {table: hidden[table] for table in served}, skipped)


def _shown(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _check_sqlite_file(url: str) -> None:
    parsed = sa.make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
        return
    if parsed.query.get("uri") or database.startswith("file:"):
        return
    if not Path(database).is_file():
        raise ConfigurationError(
            f"There is no SQLite database file at {database!r}; "
            "reflection serves an existing database and never creates one."
        )


def create_app(url: str, *, read_only: bool = False, tables: Sequence[str] | None = None,
               exclude: Sequence[str] | None = None, show: Sequence[str] = (),
               hide: Sequence[str] = (), config: Mapping[str, Any] | None = None,
               postgrest: str | None = None) -> Flask:
    """A Flask app serving every table and view of the database at ``url``.

    :param url: the database URL (``sqlite:///path.db``, ``postgresql://...``).
    :param read_only: refuse every write with 405, and open the database read-only.
    :param tables: serve only these tables and views (names as the database spells them).
    :param exclude: serve every table and view but these.
    :param show: columns to serve although named like secrets: ``column`` (in every table)
        or ``table.column``.
    :param hide: columns to hide although not named like secrets, in the same form.
    :param config: more Flask/tablerest configuration (``TABLEREST_*`` keys and the like).
    :param postgrest: also serve the PostgREST dialect under this prefix (``/rest/v1``).
    :raises ConfigurationError: the database cannot be reached or reflected, or an option
        names a table or column it does not have.
    """
    try:
        shown = sa.make_url(normalise_url(url)).render_as_string(hide_password=True)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"{url!r} is not a database URL: {exc}") from None
    _check_sqlite_file(normalise_url(url))
    app = Flask(__name__)
    # An empty key makes "//" (/codes//uses): merged, it would be another row's URL.
    app.url_map.merge_slashes = False
    app.config.update(config or {})
    app.config["DATABASE_URL"] = url
    load_environment(app.config, os.environ)
    settings = build_settings(app.config)
    try:
        # Someone else's database: its journal mode is left as it is (see database.py).
        engine = create_engine(url, settings, owned=False, read_only=read_only)
    except (SQLAlchemyError, ImportError) as exc:
        raise ConfigurationError(f"Cannot use the database URL {shown!r}: {exc}") from exc
    try:
        database = reflect_database(engine, tables=tables, exclude=exclude, show=set(show),
                                    hide=set(hide))
    except SQLAlchemyError as exc:
        engine.dispose()
        raise ConfigurationError(
            f"Cannot reflect the database {_shown(engine)}: {str(exc).splitlines()[0]}"
        ) from exc
    except ConfigurationError:
        engine.dispose()
        raise
    database.log_hidden()
    api = TableRest(engine=engine, metadata=database.metadata)
    for resource in database.resources(read_only=read_only):
        api.add(resource)
    if postgrest is not None:
        api.postgrest(postgrest)
    api.init_app(app)
    return app


def reflect(url: str, *, read_only: bool = False, tables: Sequence[str] | None = None,
            exclude: Sequence[str] | None = None, show: Sequence[str] = (),
            hide: Sequence[str] = (), config: Mapping[str, Any] | None = None,
            postgrest: str | None = None) -> Flask:
    """Reflect the database at ``url`` and return a WSGI app serving it; see ``create_app``."""
    return create_app(url, read_only=read_only, tables=tables, exclude=exclude, show=show,
                      hide=hide, config=config, postgrest=postgrest)
