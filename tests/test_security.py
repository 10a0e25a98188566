"""Hostile input: SQL in filter names and values, sort keys and field lists; the hidden
password field out of reach of filters, sorts and field lists; huge numbers; NUL bytes.
Each answer is a 200 that treats the text as data or a 400/404/422, never a 500, and the
tables are intact afterwards."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from conftest import rows
from factories import PASSWORD_HASH, add_post, add_user

INJECTIONS = [
    "' OR 1=1 --",
    "1);DROP TABLE users;--",
    "x'; DELETE FROM users; --",
    '" OR ""="',
    "1 UNION SELECT password FROM users",
    "%' OR name LIKE '%",
]


@pytest.fixture
def users(engine: sa.Engine) -> list[int]:
    ids = [add_user(engine, "alice", age=30), add_user(engine, "bob", age=25)]
    add_post(engine, ids[0], "hello")
    return ids


def assert_intact(engine: sa.Engine, users: list[int]) -> None:
    assert rows(engine, "SELECT id, name, password FROM users ORDER BY id") == [
        {"id": users[0], "name": "alice", "password": str(PASSWORD_HASH)},
        {"id": users[1], "name": "bob", "password": str(PASSWORD_HASH)}]
    assert rows(engine, "SELECT title FROM posts") == [{"title": "hello"}]


@pytest.mark.parametrize("parameter", ["name", "name__in", "name__like", "name__ne",
                                       "author__name"])
def test_sql_in_filter_values_is_data(client: FlaskClient, engine: sa.Engine,
                                      users: list[int], parameter: str) -> None:
    path = "/posts" if parameter.startswith("author") else "/users"
    for value in INJECTIONS:
        response = client.get(f"{path}?{parameter}={quote(value)}")
        assert response.status_code == 200, value
        items = response.json["items"]
        if parameter == "name__ne":  # nobody has that name: everyone is listed, nobody more
            assert sorted(item["id"] for item in items) == users, value
        else:
            assert items == [], value
        assert "argon2" not in response.get_data(as_text=True)
    assert_intact(engine, users)


@pytest.mark.parametrize("parameter", ["id", "age__in", "age__gt", "created_at__lt"])
def test_sql_in_typed_filter_values_is_400(client: FlaskClient, engine: sa.Engine,
                                           users: list[int], parameter: str) -> None:
    for value in INJECTIONS:
        response = client.get(f"/users?{parameter}={quote(value)}")
        assert response.status_code == 400, value
        assert response.json["errors"][0]["field"] == parameter
    assert_intact(engine, users)


@pytest.mark.parametrize("query", [
    "name;DROP TABLE users=1",
    "name%20OR%201=1=x",
    "id)%20OR%20(1=1",
    "__class__=x",
    "name__class__=x",
    "_sa_instance_state=x",
    "metadata=x",
    "__table__=x",
    "posts__author__password=x",
    "name__in__in=x",
    "name__=x",
    "__=x",
], ids=["statement", "or", "parenthesis", "dunder-class", "field-dunder-class",
        "sa-state", "metadata", "dunder-table", "two-levels", "double-operator",
        "empty-operator", "only-separator"])
def test_hostile_filter_names_are_400(client: FlaskClient, engine: sa.Engine,
                                      users: list[int], query: str) -> None:
    response = client.get(f"/users?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert_intact(engine, users)


@pytest.mark.parametrize("query", [
    "sort=name;drop", "sort=name%20desc", "sort=name--", "sort=(select%201)", "sort=1",
    "sort=users.name", "sort=__class__", "sort=-password", "sort=password",
    "fields=password", "fields=id,password", "fields=name;drop", "fields=*", "fields=users.*",
    "fields=__dict__",
], ids=lambda query: query.replace("%20", " "))
def test_hostile_sort_keys_and_field_lists_are_400(client: FlaskClient, engine: sa.Engine,
                                                   users: list[int], query: str) -> None:
    response = client.get(f"/users?{query}")
    assert response.status_code == 400
    assert "argon2" not in response.get_data(as_text=True)
    assert_intact(engine, users)


@pytest.mark.parametrize(("path", "query"), [
    ("/users", "password=x"),
    ("/users", f"password={quote(str(PASSWORD_HASH))}"),
    ("/users", "password__like=%24argon2%25"),
    ("/users", "password__isnull=false"),
    ("/users", "password__gt="),
    ("/posts", "author__password__like=%24argon2%25"),
    ("/posts", "author__password__isnull=false"),
], ids=["eq", "eq-hash", "like-prefix", "isnull", "gt-empty", "through-relation-like",
        "through-relation-isnull"])
def test_the_hidden_password_cannot_be_probed(client: FlaskClient, engine: sa.Engine,
                                              users: list[int], path: str, query: str) -> None:
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert "argon2" not in response.get_data(as_text=True)
    assert_intact(engine, users)


def test_huge_limits_are_clamped(client: FlaskClient, engine: sa.Engine,
                                 users: list[int]) -> None:
    for limit in ["51", "1000000", str(2**63), str(10**40)]:
        response = client.get(f"/users?limit={limit}")
        assert response.status_code == 200, limit
        assert response.json["limit"] == 50  # the users resource's max_limit
    assert_intact(engine, users)


@pytest.mark.parametrize("query", [
    f"id={10**30}", f"id=-{10**30}", f"age__gt={2**63}", f"age__in=1,{10**30}",
    f"offset={10**30}", "age=1e400", "age=Infinity",
], ids=["id", "negative-id", "just-over-int64", "in-list", "offset", "float-overflow",
        "infinity"])
def test_huge_numbers_in_queries_are_400(client: FlaskClient, engine: sa.Engine,
                                         users: list[int], query: str) -> None:
    response = client.get(f"/users?{query}")
    assert response.status_code == 400
    assert_intact(engine, users)


@pytest.mark.parametrize("path", [f"/users/{10**30}", f"/users/{2**63}", "/users/-0",
                                  "/users/1e3", "/users/%20"],
                         ids=["huge", "just-over-int64", "minus-zero", "exponent", "space"])
def test_odd_keys_are_404(client: FlaskClient, engine: sa.Engine, users: list[int],
                          path: str) -> None:
    for method in ("get", "delete", "patch"):
        response = getattr(client, method)(path, json={"age": 1})
        assert response.status_code == 404, method
    assert_intact(engine, users)


#: Just past what an ``Integer`` column holds: 32 bits on PostgreSQL, 64 on SQLite.
BEYOND_INTEGER = {"postgresql": (2**31, -(2**31) - 1, 2**40),
                  "sqlite": (2**63, -(2**63) - 1, 2**70)}


@pytest.mark.parametrize("which", [0, 1, 2], ids=["max-plus-one", "min-minus-one", "far"])
def test_integers_beyond_the_column_type_are_refused(client: FlaskClient, engine: sa.Engine,
                                                     users: list[int], which: int) -> None:
    """``age`` and ``id`` are ``Integer`` columns: 32 bits on PostgreSQL, 64 on SQLite."""
    value = BEYOND_INTEGER[engine.dialect.name][which]
    listed = client.get(f"/users?age={value}")
    assert listed.status_code == 400
    assert listed.json["errors"][0]["field"] == "age"
    assert client.get(f"/users/{value}").status_code == 404
    written = client.patch(f"/users/{users[0]}", json={"age": value})
    assert written.status_code == 422
    assert [error["field"] for error in written.json["errors"]] == ["age"]
    assert_intact(engine, users)
    assert rows(engine, "SELECT age FROM users ORDER BY id") == [{"age": 30}, {"age": 25}]


@pytest.mark.parametrize("value", [10**30, 2**64, 1e308, -1e308],
                         ids=["huge", "two-to-the-64", "huge-float", "huge-negative-float"])
def test_huge_numbers_in_bodies_are_422(client: FlaskClient, engine: sa.Engine,
                                        users: list[int], value: Any) -> None:
    response = client.patch(f"/users/{users[0]}", json={"age": value})
    assert response.status_code == 422
    assert [error["field"] for error in response.json["errors"]] == ["age"]
    assert rows(engine, "SELECT age FROM users ORDER BY id") == [{"age": 30}, {"age": 25}]


def test_decimal_beyond_its_precision_is_422(client: FlaskClient, engine: sa.Engine,
                                             users: list[int]) -> None:
    """``rating`` is ``Numeric(4, 2)``: at most 99.99."""
    response = client.post("/posts", json={"title": "t", "user_id": users[0], "rating": "123.45"})
    assert response.status_code == 422
    assert [error["field"] for error in response.json["errors"]] == ["rating"]
    assert rows(engine, "SELECT title FROM posts") == [{"title": "hello"}]


def test_nul_bytes_are_refused(client: FlaskClient, engine: sa.Engine, users: list[int]) -> None:
    """PostgreSQL text cannot hold NUL: refuse it on every database, before SQL."""
    listed = client.get("/users?name=a%00b")
    assert listed.status_code == 400
    assert listed.json["errors"][0]["field"] == "name"
    assert client.get("/users?name__like=%00%25").status_code == 400
    written = client.patch(f"/users/{users[0]}", json={"name": "ali\x00ce"})
    assert written.status_code == 422
    assert [error["field"] for error in written.json["errors"]] == ["name"]
    assert_intact(engine, users)


def test_sql_in_bodies_is_stored_as_text(client: FlaskClient, engine: sa.Engine,
                                         users: list[int]) -> None:
    hostile = "'); DROP TABLE users; --"
    response = client.post(f"/users/{users[0]}/posts", json={"title": hostile, "body": hostile})
    assert response.status_code == 201
    assert rows(engine, "SELECT title, body FROM posts WHERE id = :id",
                id=response.json["id"]) == [{"title": hostile, "body": hostile}]
    assert rows(engine, "SELECT count(*) AS n FROM users") == [{"n": 2}]


def test_sql_in_keys_is_404(client: FlaskClient, engine: sa.Engine, users: list[int]) -> None:
    for path in ["/users/1%20OR%201=1", "/users/1;DROP%20TABLE%20users",
                 "/countries/'%20OR%20'1'='1", "/country_names/a,b'%20OR%20'1'='1"]:
        assert client.get(path).status_code == 404, path
        assert client.delete(path).status_code == 404, path
    assert_intact(engine, users)
