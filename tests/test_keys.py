"""Keys: one URL per item, and an integer key is never handed out twice.

Only the canonical form of a key names an item (issue 9, item 9): integers in ASCII digits
without ``+``, leading zeros, separators or spaces (``-5`` for a negative key), UUIDs in lower
case with hyphens; any other spelling is 404, on item routes (``parse_key``) and on custom
routes (``url_key``, the microblog's timeline). Filter values stay lenient: they are values.

Integer keys of the tables tablerest's own tools make are never reused (item 2): ``Model``
tables and ``tablerest db make`` migrations get ``AUTOINCREMENT`` on SQLite, and the
microblog's migration rebuilds its tables with it, keeping rows, indexes and constraints.
PostgreSQL's sequences never reuse a value; every test runs there too.
"""

from __future__ import annotations

import datetime as dt
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from conftest import rows
from tablerest import Model, create_engine
from tablerest.extension import state_of
from tablerest.migrations import (
    NAMING_CONVENTION,
    Migrations,
    downgrade,
    init,
    make,
    upgrade,
)
from testapp import Document

MICROBLOG_MIGRATIONS = Path(__file__).resolve().parent.parent / "examples/microblog/migrations"
BEFORE_AUTOINCREMENT = "81905d5c744d"
PASSWORD = "correct horse battery staple"
NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

#: Spellings of a key that resolved before (to 1, 10 or 0) and must be 404 now.
NOT_CANONICAL = [
    pytest.param("%D9%A1", id="arabic-indic-one"),
    pytest.param("%EF%BC%91", id="full-width-one"),
    pytest.param("1_0", id="underscore"),
    pytest.param("+1", id="plus-sign"),
    pytest.param("01", id="leading-zero"),
    pytest.param("00", id="zeros"),
    pytest.param("1%20", id="trailing-space"),
    pytest.param("%201", id="leading-space"),
    pytest.param("%091", id="leading-tab"),
    pytest.param("-0", id="minus-zero"),
    pytest.param("-05", id="negative-leading-zero"),
]


def insert_users(engine: sa.Engine, table: str, *ids: int, **extra: Any) -> None:
    with engine.begin() as connection:
        for key in ids:
            connection.execute(sa.text(
                f"INSERT INTO {table} (id, name, email, password, created_at, updated_at) "
                "VALUES (:id, :name, :email, 'not-a-hash', :now, :now)"),
                {"id": key, "name": f"user{key}", "email": f"user{key}@example.com",
                 "now": "2024-01-01 00:00:00", **extra})


# -- one URL per item ------------------------------------------------------------------


@pytest.mark.parametrize("key", NOT_CANONICAL)
def test_only_the_canonical_integer_key_names_an_item(
        client: FlaskClient, engine: sa.Engine, key: str) -> None:
    insert_users(engine, "users", 0, 1, 10, -5)

    response = client.get(f"/users/{key}")

    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert client.get(f"/users/{key}/posts").status_code == 404
    assert client.patch(f"/users/{key}", json={"age": 3}).status_code == 404
    assert client.delete(f"/users/{key}").status_code == 404
    assert rows(engine, "SELECT count(*) AS n FROM users WHERE age IS NULL") == [{"n": 4}]


@pytest.mark.parametrize("key", [0, 1, 10, -5], ids=["zero", "one", "ten", "negative"])
def test_the_canonical_key_names_the_item(client: FlaskClient, engine: sa.Engine,
                                          key: int) -> None:
    insert_users(engine, "users", 0, 1, 10, -5)

    response = client.get(f"/users/{key}")

    assert response.status_code == 200
    assert response.json["id"] == key


def test_filter_values_stay_lenient(client: FlaskClient, engine: sa.Engine) -> None:
    """A filter value is a value, not a name: ``?id=01`` is the number 1."""
    insert_users(engine, "users", 1, 10)

    for value in ("01", "+1", "%201%20"):
        response = client.get(f"/users?id={value}")
        assert response.status_code == 200
        assert [item["id"] for item in response.json["items"]] == [1]


UUID_KEY = uuid.UUID("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")


@pytest.mark.parametrize("spelling", [
    pytest.param(str(UUID_KEY).upper(), id="upper-case"),
    pytest.param("0A1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", id="one-upper-case-letter"),
    pytest.param(UUID_KEY.hex, id="no-hyphens"),
    pytest.param(f"{{{UUID_KEY}}}", id="braces"),
    pytest.param(f"urn:uuid:{UUID_KEY}", id="urn"),
])
def test_a_uuid_key_is_lower_case_with_hyphens(client: FlaskClient, engine: sa.Engine,
                                                spelling: str) -> None:
    with engine.begin() as connection:
        connection.execute(sa.insert(Document.__table__).values(
            id=UUID_KEY, title="spec", created_at=NOW, updated_at=NOW))

    assert client.get(f"/documents/{UUID_KEY}").json["id"] == str(UUID_KEY)
    assert client.get(f"/documents/{spelling}").status_code == 404
    assert client.delete(f"/documents/{spelling}").status_code == 404


@pytest.mark.parametrize("key", NOT_CANONICAL)
def test_the_microblog_answers_only_canonical_keys(
        mb_client: FlaskClient, microblog: Flask, key: str) -> None:
    """Item routes (``parse_key``) and the timeline, a custom route (``url_key``)."""
    insert_users(state_of(microblog).engine, "users", 0, 1, 10, -5)

    for path in (f"/users/{key}", f"/users/{key}/timeline", f"/users/{key}/messages"):
        response = mb_client.get(path)
        assert response.status_code == 404, (path, response.get_data(as_text=True))


@pytest.mark.parametrize("key", [0, 1, 10, -5], ids=["zero", "one", "ten", "negative"])
def test_the_microblog_timeline_answers_the_canonical_key(
        mb_client: FlaskClient, microblog: Flask, key: int) -> None:
    insert_users(state_of(microblog).engine, "users", 0, 1, 10, -5)

    assert mb_client.get(f"/users/{key}").json["id"] == key
    response = mb_client.get(f"/users/{key}/timeline")
    assert response.status_code == 200
    assert response.json["items"] == []


# -- keys never handed out twice ---------------------------------------------------------


def test_the_test_app_never_reuses_a_deleted_key(client: FlaskClient, engine: sa.Engine) -> None:
    ids = []
    for name in ("ann", "bob", "cy"):
        response = client.post("/users", json={"name": name, "email": f"{name}@example.com",
                                                "password": PASSWORD})
        assert response.status_code == 201
        ids.append(response.json["id"])
    assert client.delete(f"/users/{ids[-1]}").status_code == 204

    response = client.post("/users", json={"name": "dee", "email": "dee@example.com",
                                            "password": PASSWORD})

    assert response.status_code == 201
    assert response.json["id"] == ids[-1] + 1
    assert rows(engine, "SELECT id, name FROM users ORDER BY id") == [
        {"id": ids[0], "name": "ann"}, {"id": ids[1], "name": "bob"},
        {"id": ids[-1] + 1, "name": "dee"}]


def test_the_microblog_never_gives_a_deleted_users_id_to_the_next_sign_up(
        mb_client: FlaskClient, microblog: Flask) -> None:
    ids = []
    for name in ("ann", "bob", "cy"):
        response = mb_client.post("/users", json={"name": name, "email": f"{name}@example.com",
                                                   "password": PASSWORD})
        assert response.status_code == 201
        ids.append(response.json["id"])
    token = mb_client.post("/auth/token", json={"name": "cy", "password": PASSWORD})
    assert token.status_code == 200
    bearer = {"Authorization": f"Bearer {token.json['access_token']}"}
    assert mb_client.delete(f"/users/{ids[-1]}", headers=bearer).status_code == 204

    response = mb_client.post("/users", json={"name": "dee", "email": "dee@example.com",
                                               "password": PASSWORD})

    assert response.status_code == 201
    assert response.json["id"] == ids[-1] + 1
    assert [row["id"] for row in rows(state_of(microblog).engine,
                                      "SELECT id FROM users ORDER BY id")] == [
        ids[0], ids[1], ids[-1] + 1]


# -- Model tables and generated migrations -------------------------------------------------


class Base(Model, DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


class Legacy(Base):
    """A table that keeps SQLite's plain rowid keys, as its own arguments say."""

    __tablename__ = "legacy"
    __table_args__ = {"sqlite_autoincrement": False}
    id: Mapped[int] = mapped_column(primary_key=True)


class Label(Base):
    __tablename__ = "labels"
    code: Mapped[str] = mapped_column(String(10), primary_key=True)


fans = Table(
    "fans", Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("author_id", ForeignKey("authors.id"), nullable=False),
)


@pytest.fixture
def engine_only(db_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(db_url)
    yield engine
    engine.dispose()


def sqlite_tables_with_autoincrement(engine: sa.Engine) -> set[str]:
    return {row["name"] for row in rows(
        engine, "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE "
                "'%AUTOINCREMENT%'")}


def next_id_after_deleting_the_last(engine: sa.Engine, table: str, **values: Any) -> int:
    """Insert three rows, delete the last, insert one more: how far past the deleted id
    the new one is (0: the id was handed out again)."""
    insert = sa.text(f"INSERT INTO {table} ({', '.join(values)}) VALUES "
                     f"({', '.join(':' + name for name in values)})" if values
                     else f"INSERT INTO {table} DEFAULT VALUES")
    with engine.begin() as connection:
        for _ in range(3):
            connection.execute(insert, values)
        last = connection.execute(sa.text(f"SELECT max(id) FROM {table}")).scalar_one()
        connection.execute(sa.text(f"DELETE FROM {table} WHERE id = :id"), {"id": last})
        connection.execute(insert, values)
        newest = connection.execute(sa.text(f"SELECT max(id) FROM {table}")).scalar_one()
    return int(newest) - int(last)


def test_model_tables_are_made_with_autoincrement_on_sqlite(engine_only: sa.Engine) -> None:
    Base.metadata.create_all(engine_only)

    assert next_id_after_deleting_the_last(engine_only, "authors", name="x") == 1
    if engine_only.dialect.name == "sqlite":
        # Plain Table(..., Base.metadata) too; not a table that says otherwise, nor a text key.
        assert sqlite_tables_with_autoincrement(engine_only) == {"authors", "fans"}
        assert next_id_after_deleting_the_last(engine_only, "legacy") == 0


def test_db_make_writes_autoincrement_into_new_tables(
        tmp_path: Path, engine_only: sa.Engine) -> None:
    migrations = Migrations(init(tmp_path / "migrations"), engine_only, Base.metadata)

    made = make(migrations, "first")
    upgrade(migrations)

    assert made.path is not None
    text = made.path.read_text()
    assert text.count("sqlite_autoincrement=True") == 2  # authors and fans
    assert "sqlite_autoincrement=False" in text  # legacy keeps its own choice
    assert next_id_after_deleting_the_last(engine_only, "authors", name="x") == 1
    if engine_only.dialect.name == "sqlite":
        assert sqlite_tables_with_autoincrement(engine_only) == {"authors", "fans"}


# -- the microblog's migration -------------------------------------------------------------


def microblog_migrations(engine: sa.Engine) -> Migrations:
    from microblog.models import Base as MicroblogBase

    return Migrations(MICROBLOG_MIGRATIONS, engine, MicroblogBase.metadata)


def schema_of(engine: sa.Engine) -> dict[str, Any]:
    """The indexes, unique constraints and foreign keys of the microblog's tables; not the
    index on lower(name), which SQLite cannot reflect (it warns)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
        return _schema_of(engine)


def _schema_of(engine: sa.Engine) -> dict[str, Any]:
    inspector = sa.inspect(engine)
    found: dict[str, Any] = {}
    for table in ("users", "follows", "messages"):
        found[table] = {
            "indexes": sorted((index["name"], tuple(index["column_names"]),
                               bool(index["unique"]))
                              for index in inspector.get_indexes(table)
                              if index["name"] != "uq_users_lower_name"),
            "unique": sorted(tuple(unique["column_names"])
                             for unique in inspector.get_unique_constraints(table)),
            "foreign_keys": sorted((tuple(key["constrained_columns"]), key["referred_table"],
                                    key["options"].get("ondelete"))
                                   for key in inspector.get_foreign_keys(table)),
        }
    return found


def seed_before_the_migration(engine: sa.Engine) -> None:
    now = "2024-01-01 00:00:00+00:00"
    with engine.begin() as connection:
        for key, name in ((1, "ann"), (2, "bob"), (3, "cy")):
            connection.execute(sa.text(
                "INSERT INTO users (id, name, email, password, created_at, updated_at) "
                "VALUES (:id, :name, :email, 'hash', :now, :now)"),
                {"id": key, "name": name, "email": f" {name.upper()}@Example.com", "now": now})
        connection.execute(sa.text(
            "INSERT INTO messages (id, content, user_id, created_at, updated_at) "
            "VALUES (1, 'hi', 1, :now, :now), (2, 'yo', 3, :now, :now)"), {"now": now})
        connection.execute(sa.text(
            "INSERT INTO follows (id, follower_id, followed_id, created_at, updated_at) "
            "VALUES (1, 1, 2, :now, :now), (2, 3, 1, :now, :now)"), {"now": now})
        if engine.dialect.name == "postgresql":  # ids given: move the sequences past them
            for table in ("users", "messages", "follows"):
                connection.execute(sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) "
                    f"FROM {table}"))


def contents(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    return {
        "users": rows(engine, "SELECT id, name, password FROM users ORDER BY id"),
        "messages": rows(engine, "SELECT id, content, user_id FROM messages ORDER BY id"),
        "follows": rows(engine, "SELECT id, follower_id, followed_id FROM follows ORDER BY id"),
    }


def test_the_microblog_migration_rebuilds_with_autoincrement_keeping_everything(
        engine_only: sa.Engine) -> None:
    engine = engine_only
    migrations = microblog_migrations(engine)
    upgrade(migrations, BEFORE_AUTOINCREMENT)
    seed_before_the_migration(engine)
    before, shape = contents(engine), schema_of(engine)

    applied = upgrade(migrations)

    assert [step.revision for step in applied] == ["1f310c0940e7"]
    assert contents(engine) == before
    assert schema_of(engine) == shape
    # Emails are now stored as the Email type stores them: trimmed, in lower case.
    assert [row["email"] for row in rows(engine, "SELECT email FROM users ORDER BY id")] == [
        "ann@example.com", "bob@example.com", "cy@example.com"]
    if engine.dialect.name == "sqlite":
        assert sqlite_tables_with_autoincrement(engine) == {"users", "follows", "messages"}
    # Names are unique whatever their case.
    with pytest.raises(sa.exc.IntegrityError, match="uq_users_lower_name"), \
            engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO users (name, email, password, created_at, updated_at) "
            "VALUES ('ANN', 'other@example.com', 'h', :now, :now)"),
            {"now": "2024-01-01 00:00:00+00:00"})
    with engine.begin() as connection:  # cascades still hold
        connection.execute(sa.text("DELETE FROM users WHERE id = 3"))
    assert contents(engine)["messages"] == [{"id": 1, "content": "hi", "user_id": 1}]
    assert contents(engine)["follows"] == [{"id": 1, "follower_id": 1, "followed_id": 2}]
    with engine.begin() as connection:  # and the deleted id is not handed out again
        new_id = connection.execute(sa.text(
            "INSERT INTO users (name, email, password, created_at, updated_at) "
            "VALUES ('dee', 'dee@example.com', 'h', :now, :now) RETURNING id"),
            {"now": "2024-01-01 00:00:00+00:00"}).scalar_one()
    assert new_id > 3  # PostgreSQL's sequence also spent a value on the refused insert


def test_the_microblog_migration_downgrades_and_upgrades_again(engine_only: sa.Engine) -> None:
    engine = engine_only
    migrations = microblog_migrations(engine)
    upgrade(migrations, BEFORE_AUTOINCREMENT)
    seed_before_the_migration(engine)
    shape = schema_of(engine)
    upgrade(migrations)
    kept = contents(engine)

    reverted = downgrade(migrations)

    assert [step.revision for step in reverted] == ["1f310c0940e7"]
    assert contents(engine) == kept
    assert schema_of(engine) == shape
    assert "uq_users_lower_name" not in {index["name"] for index in
                                         sa.inspect(engine).get_indexes("users")}
    if engine.dialect.name == "sqlite":
        assert sqlite_tables_with_autoincrement(engine) == set()
    assert [step.revision for step in upgrade(migrations)] == ["1f310c0940e7"]
    assert contents(engine) == kept
