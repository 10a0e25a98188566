"""Flask-SQLAlchemy's ``db.Model`` works as a resource, on its engine and session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from conftest import rows
from tablerest import Model, TableRest, Timestamps, session
from tablerest.extension import state_of


class Base(Model, DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Author(db.Model, Timestamps):  # type: ignore[name-defined,misc]
    __tablename__ = "authors"
    __fillable__ = ("name",)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)


class Draft(db.Model):  # type: ignore[name-defined,misc]
    """Kept in the ``drafts`` bind: another database."""

    __tablename__ = "drafts"
    __bind_key__ = "drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(80))


@pytest.fixture
def fsa_app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = db_url
    app.config["SQLALCHEMY_BINDS"] = {"drafts": f"sqlite:///{tmp_path / 'drafts.db'}"}
    db.init_app(app)
    api = TableRest(app, db=db)
    api.add(Author)
    api.add(Draft)
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.drop_all()
        db.engine.dispose()


def test_db_model_is_served_on_the_flask_sqlalchemy_engine(fsa_app: Flask) -> None:
    client = fsa_app.test_client()
    created = client.post("/authors", json={"name": "Ursula"})
    assert created.status_code == 201
    assert created.json["name"] == "Ursula"
    with fsa_app.app_context():
        assert state_of(fsa_app).engine is db.engine
        assert rows(db.engine, "SELECT name FROM authors") == [{"name": "Ursula"}]
    assert client.get(created.headers["Location"]).json == created.json
    assert client.post("/authors", json={"name": "Ursula"}).status_code == 409


def test_model_helpers_use_db_session(fsa_app: Flask) -> None:
    with fsa_app.app_context():
        assert session() is db.session
        Author.create(name="Octavia")
        db.session.commit()
        assert Author.count() == 1
        found = db.session.execute(sa.select(Author.name)).scalar_one()
        assert found == "Octavia"


def test_a_bind_key_model_is_served_on_its_flask_sqlalchemy_engine(fsa_app: Flask) -> None:
    client = fsa_app.test_client()

    created = client.post("/drafts", json={"title": "notes"})

    assert created.status_code == 201, created.json
    with fsa_app.app_context():
        drafts = db.engines["drafts"]
        assert state_of(fsa_app).engine_for("drafts") is drafts
        assert rows(drafts, "SELECT title FROM drafts") == [{"title": "notes"}]
        assert not sa.inspect(db.engine).has_table("drafts")
    assert client.get("/drafts").json["items"] == [{"id": 1, "title": "notes"}]
