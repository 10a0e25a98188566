"""Extra databases: a resource whose model names a bind is served from that database.

The main database is the usual one (SQLite or PostgreSQL); the bind ``archive`` is a second
SQLite file, configured as ``SQLALCHEMY_ARCHIVE`` the way an environment variable would set it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from conftest import rows
from tablerest import ConfigurationError, Resource, TableRest
from tablerest.extension import state_of


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.String(200))


class Snapshot(Base):
    __tablename__ = "snapshots"
    __bind_key__ = "archive"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(200))


def make_app(db_url: str, archive_url: str | None, *resources: type | Resource) -> Flask:
    app = Flask(__name__)
    app.config["DATABASE_URL"] = db_url
    if archive_url is not None:
        app.config["SQLALCHEMY_ARCHIVE"] = archive_url
    api = TableRest()
    for resource in resources:
        api.add(resource)
    api.init_app(app)
    return app


@pytest.fixture
def archive_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'archive.db'}"


@pytest.fixture
def bound(db_url: str, archive_url: str) -> Iterator[tuple[Flask, sa.Engine, sa.Engine]]:
    app = make_app(db_url, archive_url, Note, Snapshot)
    state = state_of(app)
    main, archive = state.engine, state.engine_for("archive")
    Note.__table__.create(main)
    Snapshot.__table__.create(archive)
    yield app, main, archive
    main.dispose()
    archive.dispose()


def test_a_bound_model_is_read_and_written_in_its_own_database(
        bound: tuple[Flask, sa.Engine, sa.Engine]) -> None:
    app, main, archive = bound
    client: FlaskClient = app.test_client()

    created = client.post("/snapshots", json={"label": "2026-11"})
    note = client.post("/notes", json={"text": "hello"})

    assert created.status_code == 201, created.json
    assert note.status_code == 201, note.json
    assert rows(archive, "SELECT id, label FROM snapshots") == [{"id": 1, "label": "2026-11"}]
    assert rows(main, "SELECT id, text FROM notes") == [{"id": 1, "text": "hello"}]
    assert not sa.inspect(main).has_table("snapshots")
    assert client.get("/snapshots").json["items"] == [{"id": 1, "label": "2026-11"}]
    assert client.get("/snapshots/1").json == {"id": 1, "label": "2026-11"}
    patched = client.patch("/snapshots/1", json={"label": "2026-12"})
    assert patched.status_code == 200
    assert rows(archive, "SELECT label FROM snapshots") == [{"label": "2026-12"}]
    assert client.delete("/snapshots/1").status_code == 204
    assert rows(archive, "SELECT id FROM snapshots") == []


def test_the_resource_option_names_the_bind_too(db_url: str, archive_url: str) -> None:
    app = make_app(db_url, archive_url, Resource(Note, bind="archive"))
    archive = state_of(app).engine_for("archive")
    Note.__table__.create(archive)

    response = app.test_client().post("/notes", json={"text": "archived"})

    assert response.status_code == 201
    assert rows(archive, "SELECT text FROM notes") == [{"text": "archived"}]
    archive.dispose()
    state_of(app).engine.dispose()


def test_an_unknown_bind_is_a_configuration_error(db_url: str) -> None:
    with pytest.raises(ConfigurationError, match="SQLALCHEMY_ARCHIVE"):
        make_app(db_url, None, Snapshot)


def test_binds_come_from_the_environment(db_url: str, archive_url: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_CONFIG_PREFIXES", "SQLALCHEMY")
    monkeypatch.setenv("SQLALCHEMY_ARCHIVE", archive_url)
    app = make_app(db_url, None, Snapshot)
    archive = state_of(app).engine_for("archive")

    assert archive.url.render_as_string() == archive_url
    archive.dispose()
    state_of(app).engine.dispose()
