"""Seeders: code that fills a database, each run in one transaction.

::

    class UsersSeeder(Seeder):
        def run(self) -> None:
            self.session.add(User(name="jane", email="jane@example.com", password="..."))

    class DatabaseSeeder(Seeder):          # what `tablerest db seed` runs
        def run(self) -> None:
            self.call(UsersSeeder, MessagesSeeder)

The convention: an app's seeders live in the module ``seeders`` beside the app's module
(``microblog.app`` -> ``microblog.seeders``), or in the module named by
``app.config["TABLEREST_SEEDERS"]``; ``DatabaseSeeder`` there is the default seeder, and any
``Seeder`` subclass there can be run by its class name. :func:`run_seeder` runs a seeder and
everything it calls in one transaction: all of it is written, or none of it.

:class:`FakeDataSeeder` fills the microblog's ``users``, ``messages`` and ``follows`` tables
with realistic fake data, in batches of ``executemany`` (names and texts come from
:mod:`tablerest.fakedata`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import Column, Connection, Engine, Table
from sqlalchemy.orm import Session

from .database import untimed, write_transaction
from .errors import TableRestError
from .fakedata import FakeData
from .orm import hash_password
from .timestamps import utcnow

if TYPE_CHECKING:
    from flask import Flask

CONFIG_KEY = "TABLEREST_SEEDERS"
DEFAULT_SEEDER = "DatabaseSeeder"

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: called as a long seeder advances."""


class SeedingError(TableRestError):
    """No seeders module, no seeder of that name, or tables a seeder needs are missing."""


S = TypeVar("S", bound="Seeder")


class Seeder:
    """Subclass and implement :meth:`run`; use :attr:`session` (ORM) or :attr:`connection`.

    Both work in the one transaction of the run; the session is flushed when the seeder ends.
    """

    def __init__(self, connection: Connection, *, session: Session | None = None) -> None:
        self.connection = connection
        self._session = session

    @property
    def session(self) -> Session:
        """An ORM session on this seeder's connection and transaction."""
        if self._session is None:
            self._session = Session(bind=self.connection)
        return self._session

    def run(self) -> None:
        """Fill the database."""
        raise NotImplementedError(f"{type(self).__name__} must implement run().")

    def call(self, *seeders: type[Seeder]) -> None:
        """Run other seeders, in order, in this seeder's transaction and session."""
        for seeder_class in seeders:
            seeder = seeder_class(self.connection, session=self.session)
            seeder.run()
            seeder.session.flush()

    def _finish(self) -> None:
        if self._session is not None:
            self._session.flush()
            self._session.close()


FAKE_PASSWORD = "fake-password"
_REQUIRED = {
    "users": ("id", "name", "email", "password"),
    "messages": ("content", "user_id"),
    "follows": ("follower_id", "followed_id"),
}
_STAMPS = ("created_at", "updated_at")
_DAY = dt.timedelta(days=1)


class FakeDataSeeder(Seeder):
    """``users`` fake users with about ``messages_per_user`` messages each and exactly
    ``follows_per_user`` follows each (fewer when there are too few users).

    Names and emails are unique, also against the users already there; every fake user's
    password is ``password`` (hashed once). The tables are reflected: ``users`` (id, name,
    email, password), ``messages`` (content, user_id), ``follows`` (follower_id, followed_id),
    and ``created_at``/``updated_at`` where a table has them. ``seed`` makes it repeatable.
    """

    def __init__(self, connection: Connection, *, session: Session | None = None,
                 users: int = 1000, messages_per_user: int = 10, follows_per_user: int = 10,
                 password: str = FAKE_PASSWORD, seed: int | None = None,
                 progress: Progress | None = None, batch_size: int = 10_000) -> None:
        super().__init__(connection, session=session)
        for name, value in (("users", users), ("messages_per_user", messages_per_user),
                            ("follows_per_user", follows_per_user)):
            if value < 0:
                raise SeedingError(f"{name} must be 0 or more, got {value}.")
        self.users, self.password, self.batch_size = users, password, max(batch_size, 1)
        self.messages_per_user, self.follows_per_user = messages_per_user, follows_per_user
        self.fake = FakeData(seed)
        self.progress = progress or (lambda _phase, _done, _total: None)
        self.counts: dict[str, int] = {}

    def run(self) -> None:
        tables = self._tables()
        user_ids = self._users(tables["users"])
        now = utcnow()
        total = len(user_ids) * self.messages_per_user
        pool = self.fake.message_pool(min(total, 20_000))
        rng = self.fake.random

        def messages(_start: int, count: int) -> list[tuple[Any, ...]]:
            return list(zip(self.fake.messages(count, pool), rng.choices(user_ids, k=count),
                            strict=True))

        self._insert(tables["messages"], ("content", "user_id"), total, messages,
                     now - 365 * _DAY, now)
        follows = min(self.follows_per_user, max(len(user_ids) - 1, 0))

        def follow_rows(start: int, count: int) -> list[tuple[Any, ...]]:
            rows: list[tuple[Any, ...]] = []
            for follower in range(start // follows, (start + count) // follows):
                others = sorted(rng.sample(range(len(user_ids) - 1), follows))
                rows += [(user_ids[follower], user_ids[o if o < follower else o + 1])
                         for o in others]
            return rows

        batch = max(self.batch_size // follows, 1) * follows if follows else self.batch_size
        self._insert(tables["follows"], ("follower_id", "followed_id"),
                     len(user_ids) * follows, follow_rows, now - 365 * _DAY, now, batch)

    def _tables(self) -> dict[str, Table]:
        existing = set(sa.inspect(self.connection).get_table_names())
        metadata = sa.MetaData()
        missing = [name for name in _REQUIRED if name not in existing]
        if not missing:
            with warnings.catch_warnings():  # the seeder needs columns, not such indexes
                warnings.filterwarnings(
                    "ignore", "Skipped unsupported reflection of expression-based index")
                metadata.reflect(self.connection, only=list(_REQUIRED))
            missing = [f"{name}.{column}" for name, columns in _REQUIRED.items()
                       for column in columns if column not in metadata.tables[name].c]
        if missing:
            raise SeedingError(
                "The fake-data seeder needs the tables users (id, name, email, password), "
                "messages (content, user_id) and follows (follower_id, followed_id); missing: "
                f"{', '.join(missing)}. Run `tablerest db upgrade` first."
            )
        return dict(metadata.tables)

    def _users(self, users: Table) -> list[Any]:
        taken = self.connection.execute(sa.select(users.c.name, users.c.email)).all()
        names = {str(name) for name, _ in taken}
        emails = {str(email).lower() for _, email in taken}
        length = getattr(users.c.name.type, "length", None) or 64
        people = self.fake.people(self.users, names, emails, name_length=length)
        before = self.connection.scalar(sa.select(sa.func.max(users.c.id))) or 0
        password = str(hash_password(self.password))

        def rows(start: int, count: int) -> list[tuple[Any, ...]]:
            return [(name, email, password) for name, email in people[start:start + count]]

        now = utcnow()
        self._insert(users, ("name", "email", "password"), len(people), rows,
                     now - 730 * _DAY, now - 365 * _DAY)
        by_name: dict[str, Any] = dict(self.connection.execute(
            sa.select(users.c.name, users.c.id).where(users.c.id > before)).all())
        return [by_name[name] for name, _ in people]

    def _insert(self, table: Table, columns: tuple[str, ...], total: int,
                rows: Callable[[int, int], list[tuple[Any, ...]]],
                first: dt.datetime, last: dt.datetime, batch: int | None = None) -> None:
        """Insert ``total`` rows made ``batch`` at a time, time-stamped from first to last."""
        stamps = [name for name in _STAMPS if name in table.c]
        sql = self._insert_sql(table, (*columns, *stamps))
        batch = batch or self.batch_size
        times = _timestamps(table.c[stamps[0]], self.connection.dialect, first, last,
                            total) if stamps else None
        self.progress(table.name, 0, total)
        done = 0
        while done < total:
            chunk = rows(done, min(batch, total - done))
            if times is not None:
                chunk = [(*row, *[stamp] * len(stamps))
                         for row, stamp in zip(chunk, times, strict=False)]
            if chunk:
                self.connection.exec_driver_sql(sql, chunk)
            done += max(len(chunk), 1)
            self.progress(table.name, min(done, total), total)
        self.counts[table.name] = total

    def _insert_sql(self, table: Table, columns: Sequence[str]) -> str:
        dialect = self.connection.dialect
        quote = dialect.identifier_preparer.quote
        mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
        if mark is None:
            raise SeedingError(f"The {dialect.name} driver's paramstyle "
                               f"{dialect.paramstyle!r} is not supported for fake data.")
        return (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
                f"VALUES ({', '.join([mark] * len(columns))})")


def _timestamps(column: Column[Any], dialect: sa.Dialect, first: dt.datetime,
                last: dt.datetime, count: int) -> Iterator[Any]:
    """``count`` increasing times from first to last, as the driver wants them stored."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    step = (last - first) / max(count, 1)
    for index in range(count):
        value = first + step * index
        yield process(value) if process else value


def run_seeder(engine: Engine, seeder_class: type[S], **options: Any) -> S:
    """Run ``seeder_class(connection, **options)`` and what it calls in one transaction."""
    with write_transaction(engine) as connection:
        untimed(connection)
        seeder = seeder_class(connection, **options)
        seeder.run()
        seeder._finish()
    return seeder


def seeders_module_name(app: Flask) -> str:
    """``TABLEREST_SEEDERS`` from the config, else ``seeders`` beside the app's module."""
    configured = app.config.get(CONFIG_KEY)
    if configured:
        return str(configured)
    name = app.import_name
    if _is_package(name):  # Flask("microblog") rather than Flask(__name__) in microblog/app.py
        return f"{name}.seeders"
    package = name.rpartition(".")[0]
    return f"{package}.seeders" if package else "seeders"


def seeders_of(module_name: str) -> dict[str, type[Seeder]]:
    """The seeders a module defines or imports, by class name."""
    module = _import(module_name)
    return {
        name: value for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, Seeder) and value is not Seeder
    }


def find_seeder(module_name: str, name: str = DEFAULT_SEEDER) -> type[Seeder]:
    """The seeder called ``name`` in ``module_name``, or a :class:`SeedingError` naming them."""
    seeders = seeders_of(module_name)
    try:
        return seeders[name]
    except KeyError:
        known = ", ".join(sorted(seeders)) or "none"
        raise SeedingError(
            f"No seeder {name!r} in {module_name!r} (seeders there: {known})."
        ) from None


def _is_package(name: str) -> bool:
    module = sys.modules.get(name)
    if module is not None:
        return hasattr(module, "__path__")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.submodule_search_locations is not None


def _import(module_name: str) -> ModuleType:
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        raise SeedingError(
            f"No seeders module {module_name!r}: create it with a DatabaseSeeder class, or "
            f"set {CONFIG_KEY} to the module that holds your seeders."
        )
    return importlib.import_module(module_name)  # its own import errors propagate

