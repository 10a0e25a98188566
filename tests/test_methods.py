"""Every route answers every method as the contract says: HEAD is GET without a body and
never writes; a method a route does not serve is 405 with ``Allow``; OPTIONS lists them.

The HEAD-writes defect: ``HEAD /things/1`` with a JSON body used to be treated as PUT and
replaced the row (the item view dispatched by elimination).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from conftest import rows
from factories import add_post, add_tags, add_user, link

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "QUERY", "FETCH", "BREW"]
JSON_BODY = {"name": "mallory", "email": "mallory@example.com", "password": "x" * 12}


@pytest.fixture
def ids(engine: sa.Engine) -> dict[str, Any]:
    user = add_user(engine, "alice", age=30)
    post = add_post(engine, user, "hello")
    add_tags(engine, "news", "misc")
    link(engine, post, "news")
    return {"user": user, "post": post}


def routes(ids: dict[str, Any]) -> dict[str, tuple[str, set[str]]]:
    """Each route of the test app, with the methods it serves (besides HEAD and OPTIONS)."""
    user, post = ids["user"], ids["post"]
    return {
        "index": ("/", {"GET"}),
        "list": ("/users", {"GET", "POST", "QUERY", "FETCH"}),
        # also the item whose key is "query" (Werkzeug prefers the static rule for POST only)
        "list query": ("/users/query", {"POST", "GET", "PATCH", "PUT", "DELETE"}),
        "item": (f"/users/{user}", {"GET", "PATCH", "PUT", "DELETE"}),
        "relation": (f"/users/{user}/posts", {"GET", "POST", "QUERY", "FETCH"}),
        "relation query": (f"/users/{user}/posts/query", {"POST"}),
        "many-to-many": (f"/posts/{post}/tags", {"GET", "QUERY", "FETCH"}),
        "link": (f"/posts/{post}/tags/misc", {"PUT", "DELETE"}),
        "openapi": ("/openapi.json", {"GET"}),
    }


def snapshot(engine: sa.Engine) -> list[Any]:
    return [rows(engine, "SELECT id, name, email, password, age FROM users ORDER BY id"),
            rows(engine, "SELECT id, title, body, user_id FROM posts ORDER BY id"),
            rows(engine, "SELECT post_id, tag_name FROM post_tags ORDER BY post_id, tag_name")]


@pytest.mark.parametrize("route", ["index", "list", "list query", "item", "relation",
                                   "relation query", "many-to-many", "link", "openapi"])
@pytest.mark.parametrize("method", METHODS)
def test_every_route_answers_every_method(client: FlaskClient, engine: sa.Engine,
                                          ids: dict[str, Any], route: str,
                                          method: str) -> None:
    url, served = routes(ids)[route]
    allowed = served | ({"HEAD"} if "GET" in served else set()) | {"OPTIONS"}
    if method == "HEAD":
        before = snapshot(engine)
        response = client.open(url, method="HEAD", json=JSON_BODY)
        assert snapshot(engine) == before, "HEAD wrote"
        if "GET" in served:
            get = client.get(url)
            assert response.status_code == get.status_code
            assert response.data == b""
            assert response.headers["Content-Type"] == get.headers["Content-Type"]
            assert response.headers.get("ETag") == get.headers.get("ETag")
        else:
            assert response.status_code == 405
        return
    if method == "OPTIONS":
        response = client.open(url, method="OPTIONS")
        assert response.status_code == 200
        assert set(response.headers["Allow"].split(", ")) == allowed
        return
    if method not in served:
        response = client.open(url, method=method, json=JSON_BODY)
        assert response.status_code == 405, response.get_json()
        assert response.mimetype == "application/problem+json"
        assert set(response.headers["Allow"].split(", ")) == allowed
        return
    # A served method answers with something other than 405 or 500 (its own tests say what).
    response = client.open(url, method=method, json={} if method != "GET" else None)
    assert response.status_code not in (405, 500), (method, url, response.get_json())


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
def test_head_on_an_item_never_reads_a_body_nor_writes(client: FlaskClient, engine: sa.Engine,
                                                       ids: dict[str, Any],
                                                       content_type: str | None) -> None:
    before = snapshot(engine)
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.open(f"/users/{ids['user']}", method="HEAD", headers=headers,
                           data=b'{"name": "x", "email": "x@example.com", "password": "y"}')
    assert response.status_code == 200
    assert response.data == b""
    assert snapshot(engine) == before


def test_head_of_a_missing_item_is_404_without_body(client: FlaskClient,
                                                    ids: dict[str, Any]) -> None:
    response = client.head("/users/99999")
    assert response.status_code == 404
    assert response.data == b""


def test_read_only_resource_answers_writes_405(db_url: str, engine: sa.Engine) -> None:
    from factories import serving
    from tablerest import Resource
    from testapp import Tag

    add_tags(engine, "news")
    with serving(db_url, Resource(Tag, allow_writes=False)) as app:
        client = app.test_client()
        for method in ("PUT", "PATCH", "DELETE"):
            response = client.open("/tags/news", method=method, json={"label": "x"})
            assert response.status_code == 405
            assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
        response = client.open("/tags/news", method="HEAD", json={"label": "x"})
        assert response.status_code == 200
    assert rows(engine, "SELECT name, label FROM tags") == [{"name": "news", "label": None}]


def test_head_in_reflection_read_only_mode_changes_nothing(tmp_path: Any) -> None:
    from tablerest import reflect

    path = tmp_path / "albums.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(sa.text(
            "CREATE TABLE Album (AlbumId INTEGER PRIMARY KEY, Title TEXT NOT NULL, "
            "ArtistId INTEGER)"))
        connection.execute(sa.text("INSERT INTO Album VALUES (1, 'Original', 7)"))
    app: Flask = reflect(f"sqlite:///{path}", read_only=True)
    client = app.test_client()
    response = client.open("/Album/1", method="HEAD", json={"Title": "X", "ArtistId": 1})
    assert response.status_code == 200
    assert response.data == b""
    response = client.put("/Album/1", json={"Title": "X", "ArtistId": 1})
    assert response.status_code == 405
    assert rows(engine, "SELECT * FROM Album") == [
        {"AlbumId": 1, "Title": "Original", "ArtistId": 7}]
    engine.dispose()
