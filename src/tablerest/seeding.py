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
with realistic fake data, in batches (see :mod:`tablerest.fakedata`).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from .database import write_transaction
from .errors import TableRestError

if TYPE_CHECKING:
    from flask import Flask

CONFIG_KEY = "TABLEREST_SEEDERS"
DEFAULT_SEEDER = "DatabaseSeeder"

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: called as a long seeder advances."""


class SeedingError(TableRestError):
    """No seeders module, no seeder of that name, or tables a seeder needs are missing."""


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
            self._session = Session(bind=self.connection,
                                    join_transaction_mode="create_savepoint")
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


def run_seeder(engine: Engine, seeder_class: type[Seeder], **options: Any) -> Seeder:
    """Run ``seeder_class(connection, **options)`` and what it calls in one transaction."""
    with write_transaction(engine) as connection:
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
    module = importlib.import_module(name) if name != "__main__" else None
    if module is not None and hasattr(module, "__path__"):  # the app was named after a package
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


from .fakedata import FakeDataSeeder as FakeDataSeeder  # noqa: E402  (it subclasses Seeder)
