"""Rows for tests, written with SQLAlchemy Core straight into the database.

Fast (one Argon2 hash for the whole session instead of one per user) and independent of the
HTTP API the tests exercise. Column defaults (timestamps, ``published``) still apply.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask
from werkzeug.serving import make_server

from tablerest import Resource, TableRest, hash_password
from testapp import Base, Post, Tag, User, post_tags

PASSWORD = "correct horse battery"
PASSWORD_HASH = hash_password(PASSWORD)


def insert(engine: sa.Engine, model: Any, *rows: dict[str, Any]) -> list[Any]:
    """Insert ``rows`` into ``model``'s table in one transaction; their primary keys."""
    table = model if isinstance(model, sa.Table) else model.__table__
    keys = []
    with engine.begin() as connection:
        for row in rows:
            result = connection.execute(sa.insert(table).values(row))
            keys.append(result.inserted_primary_key[0] if result.inserted_primary_key else None)
    return keys


def add_user(engine: sa.Engine, name: str, **columns: Any) -> int:
    """A user called ``name`` whose password is ``PASSWORD``; its id."""
    row = {"name": name, "email": f"{name}@example.com", "password": PASSWORD_HASH, **columns}
    key: int = insert(engine, User, row)[0]
    return key


def add_post(engine: sa.Engine, user_id: int, title: str, **columns: Any) -> int:
    key: int = insert(engine, Post, {"user_id": user_id, "title": title, **columns})[0]
    return key


def add_tags(engine: sa.Engine, *names: str) -> None:
    insert(engine, Tag, *({"name": name} for name in names))


def link(engine: sa.Engine, post_id: int, tag_name: str, at: dt.datetime | None = None) -> None:
    """Tag a post, the link made at ``at`` (default: now)."""
    insert(engine, post_tags, {"post_id": post_id, "tag_name": tag_name,
                               "created_at": at or dt.datetime.now(dt.UTC)})


@contextmanager
def serving(db_url: str, *resources: type | Resource, **config: Any) -> Iterator[Flask]:
    """An app serving only ``resources`` (models, ``Resource`` classes or instances)."""
    app = Flask(__name__)
    app.testing = True
    app.config.update(DATABASE_URL=db_url, TABLEREST_SECRET_KEY="test-secret-key-0123456789",
                      **config)
    api = TableRest(app)
    for resource in resources:
        api.add(resource)
    engine = api.engine_of(app)
    Base.metadata.create_all(engine)
    try:
        yield app
    finally:
        engine.dispose()


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """``app`` behind Werkzeug's threaded server on a free port of 127.0.0.1; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def postgrest_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The PostgREST error body of ``response``: JSON with all four keys, the status and
    the code."""
    assert response.status_code == status, response.data
    assert response.content_type.startswith("application/json"), response.content_type
    body: dict[str, Any] = response.json
    assert set(body) == {"code", "message", "details", "hint"}
    assert body["code"] == code, body
    return body
