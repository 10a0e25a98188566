"""Serving an existing database leaves its file alone: reflection never switches a SQLite file
to WAL, and read-only mode opens it read-only (PostgreSQL: read-only transactions). An app's
own database (created and migrated by tablerest) keeps WAL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from conftest import rows
from tablerest import TableRest
from tablerest.database import read_only_sqlite_url
from tablerest.extension import state_of
from tablerest.reflection import create_app

SCHEMA = ("CREATE TABLE artist (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL)",
          "INSERT INTO artist VALUES (1, 'AC/DC'), (2, 'Accept')")


def _create(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in SCHEMA:
            connection.exec_driver_sql(statement)
    engine.dispose()


@pytest.fixture
def database(db_url: str) -> str:
    _create(db_url)
    return db_url


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    """A SQLite file made by another program: rollback journal, as sqlite3 leaves it."""
    path = tmp_path / "existing.sqlite"
    _create(f"sqlite:///{path}")
    return path


def _journal_bytes(path: Path) -> bytes:
    """Header bytes 18 and 19: 1 for a rollback journal, 2 for WAL."""
    return path.read_bytes()[18:20]


def test_serving_reads_changes_no_byte(sqlite_file: Path) -> None:
    before = sqlite_file.read_bytes()
    app = create_app(f"sqlite:///{sqlite_file}")
    client = app.test_client()

    listed = client.get("/artist")
    item = client.get("/artist/1")
    state_of(app).engine.dispose()

    assert listed.status_code == 200 and listed.json["count"] == 2
    assert item.json == {"id": 1, "name": "AC/DC"}
    assert sqlite_file.read_bytes() == before
    assert sorted(p.name for p in sqlite_file.parent.iterdir()) == ["existing.sqlite"]


def test_writes_keep_the_files_journal_mode(sqlite_file: Path) -> None:
    app = create_app(f"sqlite:///{sqlite_file}")

    created = app.test_client().post("/artist", json={"name": "Aerosmith"})
    state_of(app).engine.dispose()

    assert created.status_code == 201
    assert _journal_bytes(sqlite_file) == b"\x01\x01"
    with sqlite3.connect(sqlite_file) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert connection.execute("SELECT name FROM artist WHERE id = 3").fetchone() == (
            "Aerosmith",)
    connection.close()


def test_a_wal_file_stays_wal(sqlite_file: Path) -> None:
    with sqlite3.connect(sqlite_file) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    before = sqlite_file.read_bytes()

    for read_only in (True, False):
        app = create_app(f"sqlite:///{sqlite_file}", read_only=read_only)
        assert app.test_client().get("/artist/2").json == {"id": 2, "name": "Accept"}
        state_of(app).engine.dispose()

    assert sqlite_file.read_bytes() == before


def test_read_only_changes_no_byte(sqlite_file: Path) -> None:
    before = sqlite_file.read_bytes()
    app = create_app(f"sqlite:///{sqlite_file}", read_only=True)
    client = app.test_client()

    answers = [client.get("/artist").status_code, client.get("/artist/1").status_code,
               client.post("/artist", json={"name": "x"}).status_code,
               client.patch("/artist/1", json={"name": "x"}).status_code,
               client.delete("/artist/2").status_code]
    state_of(app).engine.dispose()

    assert answers == [200, 200, 405, 405, 405]
    assert sqlite_file.read_bytes() == before


def test_read_only_opens_the_database_read_only(database: str) -> None:
    app = create_app(database, read_only=True)
    engine = state_of(app).engine

    try:
        with pytest.raises(sa.exc.DBAPIError, match=r"(?i)read-?only"), engine.begin() as conn:
            conn.execute(sa.text("UPDATE artist SET name = 'x' WHERE id = 1"))
        served = app.test_client().get("/artist?sort=id").json["items"]
    finally:
        engine.dispose()

    assert served == [{"id": 1, "name": "AC/DC"}, {"id": 2, "name": "Accept"}]
    check = sa.create_engine(database)
    assert rows(check, "SELECT name FROM artist WHERE id = 1") == [{"name": "AC/DC"}]
    check.dispose()


def test_an_apps_own_database_is_switched_to_wal(tmp_path: Path) -> None:
    path = tmp_path / "own.db"
    app = Flask(__name__)
    app.config["DATABASE_URL"] = f"sqlite:///{path}"
    metadata = sa.MetaData()
    sa.Table("notes", metadata, sa.Column("id", sa.Integer, primary_key=True))
    api = TableRest(app, metadata=metadata)

    metadata.create_all(api.engine_of(app))
    api.engine_of(app).dispose()

    assert _journal_bytes(path) == b"\x02\x02"


RO = {"mode": "ro", "uri": "true"}


@pytest.mark.parametrize(("url", "database", "query"), [
    ("sqlite:////data/x.db", "file:/data/x.db", RO),
    ("sqlite:////data/a b#c%.db", "file:/data/a%20b%23c%25.db", RO),
    ("sqlite:///file:/data/x.db?uri=true", "file:/data/x.db", RO),
    ("sqlite:///file:/data/x.db?immutable=1&uri=true", "file:/data/x.db",
     {"immutable": "1", "uri": "true"}),
    ("sqlite://", None, {}),
], ids=["path", "quoted", "uri", "immutable", "memory"])
def test_read_only_sqlite_urls(url: str, database: str | None, query: dict[str, str]) -> None:
    made = read_only_sqlite_url(sa.make_url(url))
    assert (made.database, dict(made.query)) == (database, query)
