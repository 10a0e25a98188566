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

Relations (from foreign keys, named per resource)
    - to-one, on the table holding the foreign key: the key column without its id suffix
      (``id`` in any case after ``_``, ``-`` or a space; ``Id`` after a letter or digit;
      ``ID`` after a lower-case letter or digit): ``ArtistId`` -> ``Artist``,
      ``support_rep_id`` -> ``support_rep``, ``Order Id`` -> ``Order``.
      Fallback: ``<columns>_<target table>`` (``ReportsTo_Employee``).
    - to-many, on the referenced table: the referencing table's name (``Artist`` ->
      ``Album``). Fallback: ``<referencing table>_by_<columns>`` (``Employee_by_ReportsTo``).
    - many-to-many, through a pure link table (every column belongs to exactly one of its two
      foreign keys, and all its columns form its primary key, like ``PlaylistTrack``): the
      other table's name (``Playlist`` -> ``Track``, ``Track`` -> ``Playlist``). Fallback:
      ``<other table>_via_<link table>_<link columns to the other table>``. The link table is
      a resource too, with its own to-one relations, and its referenced tables get a to-many
      to it.

    ``<columns>`` is the foreign key's column names joined with ``_``.
    The fallback is used when there is no preferred name (a key column without an id suffix,
    a composite foreign key, a self-reference), and by *every* relation whose preferred name
    is taken: by a column of the same table, or by another relation of that table wanting the
    same name (two keys to one table, two link tables to one table). So a self-reference
    ``Employee.ReportsTo`` gives ``ReportsTo_Employee`` (to-one) and ``Employee_by_ReportsTo``
    (to-many); ``Message.sender_id`` and ``Message.recipient_id`` to ``User`` give ``sender``
    and ``recipient`` on ``Message``, and ``Message_by_sender_id`` and
    ``Message_by_recipient_id`` on ``User``. A fallback that is still taken gets ``_2``,
    ``_3``, ... in the order to-one, to-many, many-to-many. Relation names go through the same
    path-segment rule as resource names. A relation is served only when every table it touches
    (the link table included) is served.

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
    Datetimes stored without a zone are UTC. SQLite keeps datetimes as text: new values are
    written in the layout the column already uses (``2021-01-01 00:00:00``, or with a ``T``,
    or with microseconds), so comparisons and sorting stay right; a SQLite datetime column
    that holds numbers (epoch seconds) is served as numbers. Foreign keys are enforced,
    SQLite included. A SQLite file keeps its journal mode: reflection never switches it to WAL
    (which would change the file), and serving only reads it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import Connection, Engine, MetaData, Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.schema import Column, ForeignKeyConstraint

from .database import create_engine
from .errors import ConfigurationError
from .extension import TableRest
from .resource import Resource
from .schema import RelationInfo, RelationKind
from .secret_columns import hidden_columns
from .settings import build_settings, load_environment, normalise_url

_ID_SUFFIX = re.compile(r"(?P<base>.+?)(?:[_ \-][Ii][Dd]|(?<=[A-Za-z0-9])Id|(?<=[a-z0-9])ID)")
_UNSAFE = re.compile(r"[/\\<>\x00-\x1f\x7f]")
_WITHOUT_ROWID = re.compile(r"\bWITHOUT\s+ROWID\b", re.IGNORECASE)
log = logging.getLogger("tablerest")


def strip_id_suffix(name: str) -> str | None:
    """``ArtistId`` -> ``Artist``, ``artist_id`` -> ``artist``; None without an id suffix."""
    match = _ID_SUFFIX.fullmatch(name)
    return match.group("base") if match else None


def url_segment(name: str) -> str:
    """``name`` made safe as one URL path segment (see the module docstring)."""
    safe = _UNSAFE.sub("_", name)
    return "_" * len(safe) if safe.strip(".") == "" else safe


# -- relations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    preferred: str | None
    fallback: str
    relation: RelationInfo


def _columns_of(key: ForeignKeyConstraint) -> str:
    return "_".join(column.name for column in key.columns)


def _pairs(key: ForeignKeyConstraint, reverse: bool = False,
           ) -> tuple[tuple[Column[Any], Column[Any]], ...]:
    pairs = [(element.parent, element.column) for element in key.elements]
    return tuple((remote, local) if reverse else (local, remote) for local, remote in pairs)


def _sorted_keys(table: Table, served: Mapping[Table, str]) -> list[ForeignKeyConstraint]:
    """The table's foreign keys to served tables, in column order (sets have no order)."""
    position = {column.name: index for index, column in enumerate(table.columns)}
    keys = [key for key in table.foreign_key_constraints
            if key.referred_table in served and key.elements]
    return sorted(keys, key=lambda key: ([position[c.name] for c in key.columns],
                                         served[key.referred_table]))


def link_keys(table: Table, served: Mapping[Table, str],
              ) -> tuple[ForeignKeyConstraint, ForeignKeyConstraint] | None:
    """The two foreign keys of a pure link table, or None when ``table`` is not one."""
    keys = _sorted_keys(table, served)
    if len(keys) != 2 or len(table.foreign_key_constraints) != 2:
        return None
    first = {column.name for column in keys[0].columns}
    second = {column.name for column in keys[1].columns}
    every = {column.name for column in table.columns}
    key = {column.name for column in table.primary_key.columns}
    if first & second or first | second != every or key != every:
        return None
    return keys[0], keys[1]


def _relation(kind: RelationKind, target: Table,
              pairs: tuple[tuple[Column[Any], Column[Any]], ...],
              secondary: Table | None = None,
              secondary_pairs: tuple[tuple[Column[Any], Column[Any]], ...] = ()) -> RelationInfo:
    return RelationInfo(name="", kind=kind, target=target, pairs=pairs, secondary=secondary,
                        secondary_pairs=secondary_pairs)


def describe_relations(served: Mapping[Table, str]) -> dict[Table, dict[str, RelationInfo]]:
    """Every served table's relations, named by the rule of the module docstring.

    :param served: the tables to serve -> their resource names.
    """
    to_one: dict[Table, list[_Candidate]] = {table: [] for table in served}
    to_many: dict[Table, list[_Candidate]] = {table: [] for table in served}
    many: dict[Table, list[_Candidate]] = {table: [] for table in served}
    for table, name in sorted(served.items(), key=lambda item: item[1]):
        for key in _sorted_keys(table, served):
            target = key.referred_table
            columns = _columns_of(key)
            stripped = strip_id_suffix(columns) if len(key.columns) == 1 else None
            to_one[table].append(_Candidate(
                stripped, f"{columns}_{served[target]}",
                _relation("to_one", target, _pairs(key))))
            to_many[target].append(_Candidate(
                None if target is table else name, f"{name}_by_{columns}",
                _relation("to_many", table, _pairs(key, reverse=True))))
        link = link_keys(table, served)
        if link is None:
            continue
        for near, far in (link, link[::-1]):
            owner, other = near.referred_table, far.referred_table
            many[owner].append(_Candidate(
                None if owner is other else served[other],
                f"{served[other]}_via_{name}_{_columns_of(far)}",
                _relation("many_to_many", other, _pairs(near, reverse=True), table,
                          _pairs(far, reverse=True))))
    return {table: _name_relations([*to_one[table], *to_many[table], *many[table]], table)
            for table in served}


def _name_relations(candidates: Sequence[_Candidate], table: Table) -> dict[str, RelationInfo]:
    columns = {column.name for column in table.columns}
    wanted = Counter(url_segment(c.preferred) for c in candidates if c.preferred is not None)
    chosen: dict[int, str] = {}
    for index, candidate in enumerate(candidates):
        if candidate.preferred is None:
            continue
        preferred = url_segment(candidate.preferred)
        if preferred not in columns and wanted[preferred] == 1:
            chosen[index] = preferred
    taken = columns | set(chosen.values())
    for index, candidate in enumerate(candidates):
        if index in chosen:
            continue
        fallback = url_segment(candidate.fallback)
        name, number = fallback, 1
        while name in taken:
            number += 1
            name = f"{fallback}_{number}"
        chosen[index] = name
        taken.add(name)
    return {chosen[index]: replace(candidate.relation, name=chosen[index])
            for index, candidate in enumerate(candidates)}


# -- what the database stores ----------------------------------------------------------------


class TextDateTime(sqlite.DATETIME):
    """A SQLite datetime written in the layout the column already uses.

    ``sep`` is the date/time separator; ``micro`` writes microseconds always (SQLAlchemy's
    own layout) instead of only when they are not zero (SQLite's ``datetime()`` layout).
    """

    def __init__(self, sep: str = " ", micro: bool = False, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]
        self.sep, self.micro = sep, micro

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        sep, micro = self.sep, self.micro

        def process(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                if value.tzinfo is not None:
                    value = value.astimezone(dt.UTC).replace(tzinfo=None)
                spec = "microseconds" if micro or value.microsecond else "seconds"
                return value.isoformat(sep=sep, timespec=spec)
            if isinstance(value, dt.date):
                return f"{value.isoformat()}{sep}00:00:00{'.000000' if micro else ''}"
            return value

        return process


def _settle_sqlite(connection: Connection, tables: Iterable[Table]) -> None:
    """Rowid-alias keys are assigned by SQLite; datetimes keep the column's text layout."""
    declared: dict[str, list[str]] = {}
    without_rowid: set[str] = set()
    rows = connection.exec_driver_sql(
        "SELECT m.name, m.sql, p.type FROM sqlite_master AS m "
        "JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table' AND p.pk > 0"
    )
    for table_name, sql, column_type in rows:
        declared.setdefault(table_name, []).append(str(column_type or ""))
        if sql and _WITHOUT_ROWID.search(sql):
            without_rowid.add(table_name)
    for table in tables:
        types = declared.get(table.name, [])
        rowid = (len(types) == 1 and types[0].strip().upper() == "INTEGER"
                 and table.name not in without_rowid)
        for column in table.primary_key.columns:
            column.autoincrement = rowid
        for column in table.columns:
            if isinstance(column.type, sa.DateTime) and not isinstance(column.type, TextDateTime):
                column.type = _datetime_layout(connection, column)


def _datetime_layout(connection: Connection, column: Column[Any]) -> sa.types.TypeEngine[Any]:
    row = connection.execute(
        sa.select(sa.func.typeof(column), sa.type_coerce(column, sa.Text))
        .where(column.is_not(None)).limit(1)
    ).first()
    if row is None:
        return TextDateTime()
    kind, sample = row
    # Epoch seconds or Julian days: served as the numbers they are, not parsed into a 500.
    if kind == "integer":
        return sa.Integer()
    if kind == "real":
        return sa.Float()
    if not isinstance(sample, str) or len(sample) < 19:
        return TextDateTime()
    return TextDateTime(sep="T" if sample[10] in "Tt" else " ", micro="." in sample[19:])


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
            _settle_sqlite(connection, served)
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
