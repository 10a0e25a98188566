"""Fixtures: every test that takes ``db_url`` runs on SQLite and on a real PostgreSQL server.

The PostgreSQL server is started once per session (``pgserver.py``) and removed at the end.
Each test gets an empty schema: a new SQLite file, or the tables dropped and re-created.
A third value, ``pgbouncer``, asked for with ``indirect=True`` (``test_pgbouncer.py``), is a
database of that server reached through PgBouncer in transaction pooling mode
(``pgbouncer.py``), with ``TABLEREST_DATABASE_POOLER=transaction``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from pgbouncer import PgBouncer, find_pgbouncer
from pgserver import PostgresServer, postgres_for_tests
from tablerest.extension import state_of
from testapp import Base, create_app

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    server = postgres_for_tests()
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run installs it.")
        pytest.skip("PostgreSQL binaries are not installed (apt-get install postgresql).")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresServer) -> str:
    return postgres.create_database("tablerest_test")


#: The database the PgBouncer tests use, with a time limit and a time zone of its own (as a DBA
#: may set them), so that a client's setting left on a shared server connection would show.
BOUNCED_DATABASE = "tablerest_bouncer"
BOUNCED_TIMEOUT = "5s"
BOUNCED_TIMEZONE = "Asia/Tokyo"


@pytest.fixture(scope="session")
def pgbouncer(postgres: PostgresServer) -> Iterator[PgBouncer]:
    binary = find_pgbouncer()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("PgBouncer is not installed; .ci/run installs it.")
        pytest.skip("PgBouncer is not installed (apt-get install pgbouncer).")
    url = postgres.create_database(BOUNCED_DATABASE)
    _run(url, f"ALTER DATABASE {BOUNCED_DATABASE} SET statement_timeout = '{BOUNCED_TIMEOUT}'",
         f"ALTER DATABASE {BOUNCED_DATABASE} SET timezone = '{BOUNCED_TIMEZONE}'")
    bouncer = PgBouncer(postgres, binary)
    bouncer.start()
    yield bouncer
    bouncer.stop()


def _run(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> str:
    """A URL to an empty database: a fresh SQLite file, or the shared PostgreSQL test db
    (directly, or through PgBouncer)."""
    # The environment wins over app.config: keep a developer's DATABASE_URL out of the tests.
    for name in ("DATABASE_URL", "FLASK_CONFIG_PREFIXES", "TABLEREST_DATABASE_POOLER"):
        monkeypatch.delenv(name, raising=False)
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    if request.param == "pgbouncer":
        bouncer: PgBouncer = request.getfixturevalue("pgbouncer")
        monkeypatch.setenv("TABLEREST_DATABASE_POOLER", "transaction")
        _run(bouncer.server.url(BOUNCED_DATABASE), "DROP SCHEMA public CASCADE",
             "CREATE SCHEMA public")
        return bouncer.url(BOUNCED_DATABASE)
    url: str = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture
def app(db_url: str) -> Iterator[Flask]:
    app = create_app(db_url)
    app.testing = True
    engine = state_of(app).engine
    Base.metadata.create_all(engine)
    yield app
    engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def engine(app: Flask) -> sa.Engine:
    return state_of(app).engine


def rows(engine: sa.Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    """What is in the database, read with plain SQL."""
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(sa.text(sql), params).mappings()]


SECRET = "microblog-test-secret-0123456789"


@pytest.fixture
def microblog(db_url: str) -> Iterator[Flask]:
    """The example microblog on a schema made by its committed migrations."""
    from microblog.app import create_app as create_microblog

    from tablerest.migrations import Migrations, upgrade

    app = create_microblog({"DATABASE_URL": db_url, "TABLEREST_SECRET_KEY": SECRET})
    app.testing = True
    engine = state_of(app).engine
    upgrade(Migrations.for_app(app))
    yield app
    engine.dispose()


@pytest.fixture
def mb_client(microblog: Flask) -> FlaskClient:
    return microblog.test_client()
