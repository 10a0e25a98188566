"""PUT by the whole primary key in the PostgREST dialect, on SQLite and PostgreSQL: an
upsert of one row (insert, or replace every column) through the resource's validation,
read-only fields, hooks and row policy; PostgREST's errors (PGRST105, 114, 115) and answers
(201 / 200 with a representation, else 204). The database is read with plain SQL."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from conftest import rows
from factories import postgrest_error as error
from tablerest.auth import issue_token
from tablerest.extension import state_of
from tablerest.postgrest import options_for, register

API = "/rest/v1"
REPRESENTATION = {"Prefer": "return=representation"}


@pytest.fixture
def pg(app: Flask, client: FlaskClient) -> FlaskClient:
    register(app, options_for(API))
    for code, name in (("fr", "France"), ("de", "Germany")):
        assert client.post("/countries", json={"code": code, "name": name}).status_code == 201
    assert client.post("/country_names", json={"country_code": "fr", "lang": "de",
                                               "name": "Frankreich"}).status_code == 201
    assert client.post("/users", json={"name": "ann", "email": "ann@example.org",
                                       "password": "secret-pass"}).status_code == 201
    assert client.post("/posts", json={"title": "Hello", "body": "text", "rating": "4.5",
                                       "published": True, "user_id": 1}).status_code == 201
    return client




def countries(engine: sa.Engine) -> dict[str, str]:
    return {row["code"]: row["name"] for row in rows(engine, "SELECT * FROM countries")}


def test_put_inserts_a_missing_row(pg: FlaskClient, engine: sa.Engine) -> None:
    response = pg.put(f"{API}/countries?code=eq.es", json={"code": "es", "name": "Spain"})
    assert response.status_code == 204
    assert response.data == b""
    assert countries(engine) == {"fr": "France", "de": "Germany", "es": "Spain"}


def test_put_answers_201_inserted_and_200_replaced_with_representation(
        pg: FlaskClient, engine: sa.Engine) -> None:
    response = pg.put(f"{API}/countries?code=eq.it&select=name",
                      json={"code": "it", "name": "Italy"}, headers=REPRESENTATION)
    assert response.status_code == 201
    assert response.content_type == "application/json; charset=utf-8"
    assert response.json == [{"name": "Italy"}]
    response = pg.put(f"{API}/countries?code=eq.it", json={"code": "it", "name": "Italia"},
                      headers=REPRESENTATION)
    assert response.status_code == 200
    assert response.json == [{"code": "it", "name": "Italia"}]
    response = pg.put(f"{API}/countries?code=eq.fr", json=[{"code": "fr", "name": "La France"}],
                      headers={**REPRESENTATION,
                               "Accept": "application/vnd.pgrst.object+json"})
    assert response.status_code == 200
    assert response.json == {"code": "fr", "name": "La France"}
    assert countries(engine) == {"fr": "La France", "de": "Germany", "it": "Italia"}
    assert pg.put(f"{API}/countries?code=eq.de", json={"code": "de", "name": "Deutschland"},
                  headers={"Prefer": "return=minimal"}).status_code == 204
    assert countries(engine)["de"] == "Deutschland"


def test_put_replaces_every_column(pg: FlaskClient, engine: sa.Engine) -> None:
    # As tablerest's own PUT: a nullable column the body leaves out becomes NULL.
    response = pg.put(f"{API}/posts?id=eq.1", json={"id": 1, "title": "New", "user_id": 1},
                      headers=REPRESENTATION)
    assert response.status_code == 200
    [row] = rows(engine, "SELECT title, body, rating, published FROM posts")
    assert (row["title"], row["body"], row["rating"]) == ("New", None, None)
    assert response.json[0]["body"] is None


def test_put_by_a_composite_key(pg: FlaskClient, engine: sa.Engine) -> None:
    url = f"{API}/country_names?lang=eq.it&country_code=eq.fr"
    assert pg.put(url, json={"country_code": "fr", "lang": "it", "name": "Francia"}
                  ).status_code == 204
    assert pg.put(url, json={"lang": "it", "country_code": "fr", "name": "La Francia"}
                  ).status_code == 204
    assert rows(engine, "SELECT * FROM country_names ORDER BY lang") == [
        {"country_code": "fr", "lang": "de", "name": "Frankreich"},
        {"country_code": "fr", "lang": "it", "name": "La Francia"}]


@pytest.mark.parametrize("query", [
    "name=eq.Spain", "code=neq.es", "code=not.eq.es", "code=eq.es&name=eq.Spain",
    "code=eq.es&code=eq.es", "code=in.(es)", "or=(code.eq.es)", "code=eq.es&or=(code.eq.es)",
    "",
])
def test_filters_must_be_eq_on_the_whole_key(pg: FlaskClient, engine: sa.Engine,
                                             query: str) -> None:
    body = error(pg.put(f"{API}/countries?{query}", json={"code": "es", "name": "Spain"}),
                 405, "PGRST105")
    assert body["message"] == ("Filters must include all and only primary key columns with "
                               "'eq' operators")
    assert "es" not in countries(engine)


def test_a_composite_key_needs_every_column(pg: FlaskClient) -> None:
    error(pg.put(f"{API}/country_names?country_code=eq.fr",
                 json={"country_code": "fr", "lang": "it", "name": "x"}), 405, "PGRST105")


@pytest.mark.parametrize("body", [
    {"code": "it", "name": "Spain"}, {"name": "Spain"}, {"code": "ES", "name": "Spain"},
    {"code": None, "name": "Spain"},
])
def test_the_body_key_must_match_the_url(pg: FlaskClient, engine: sa.Engine,
                                         body: dict[str, Any]) -> None:
    response = pg.put(f"{API}/countries?code=eq.es", json=body)
    assert error(response, 400, "PGRST115")["message"] == (
        "Payload values do not match URL in primary key column(s)")
    assert set(countries(engine)) == {"fr", "de"}


def test_limit_offset_bodies_and_columns(pg: FlaskClient, engine: sa.Engine) -> None:
    url = f"{API}/countries?code=eq.es"
    spain = {"code": "es", "name": "Spain"}
    error(pg.put(f"{url}&limit=1", json=spain), 400, "PGRST114")
    error(pg.put(f"{url}&offset=0", json=spain), 400, "PGRST114")
    error(pg.put(url, json=[spain, spain]), 400, "PGRST102")
    error(pg.put(url, json=[]), 400, "PGRST102")
    error(pg.put(url, data="{", content_type="application/json"), 400, "PGRST102")
    error(pg.put(url, json={**spain, "capital": "Madrid"}), 400, "PGRST204")
    error(pg.put(url, json={"code": "es", "name": "x" * 81}), 400, "22023")
    error(pg.put(f"{API}/countries?code=eq.abc", json={"code": "abc", "name": "x"}),
          400, "22023")
    error(pg.put(f"{API}/posts?id=eq.x", json={"id": "x", "title": "t"}), 400, "22P02")
    assert set(countries(engine)) == {"fr", "de"}


def test_a_read_only_key_cannot_be_inserted(pg: FlaskClient, engine: sa.Engine) -> None:
    # posts.id is the server's to choose: a PUT may replace post 1, not create post 7.
    error(pg.put(f"{API}/posts?id=eq.7", json={"id": 7, "title": "t", "user_id": 1}),
          400, "22023")
    assert [row["id"] for row in rows(engine, "SELECT id FROM posts")] == [1]


def test_rollback_keeps_nothing(pg: FlaskClient, engine: sa.Engine) -> None:
    response = pg.put(f"{API}/countries?code=eq.fr", json={"code": "fr", "name": "Gaul"},
                      headers={"Prefer": "return=representation, tx=rollback"})
    assert response.status_code == 200
    assert response.json == [{"code": "fr", "name": "Gaul"}]
    assert "tx=rollback" in response.headers["Preference-Applied"]
    assert countries(engine)["fr"] == "France"


def test_put_goes_through_the_row_policy(microblog: Flask, mb_client: FlaskClient) -> None:
    state = state_of(microblog)
    tokens = []
    for name in ("ann", "bob"):
        response = mb_client.post("/users", json={"name": name, "email": f"{name}@x.org",
                                                  "password": "password123"})
        token = issue_token(state, response.json["id"])["access_token"]
        tokens.append({"Authorization": f"Bearer {token}"})
    ann, bob = tokens
    assert mb_client.post(f"{API}/messages", json={"content": "hi"}, headers=ann
                          ).status_code == 201
    url = f"{API}/messages?id=eq.1"
    error(mb_client.put(url, json={"id": 1, "content": "bob was here"}, headers=bob),
          403, "42501")
    error(mb_client.put(url, json={"id": 1, "content": "anon"}), 401, "42501")
    response = mb_client.put(f"{url}&select=content,author(name)",
                             json={"id": 1, "content": "edited"},
                             headers={**ann, **REPRESENTATION})
    assert response.status_code == 200
    assert response.json == [{"content": "edited", "author": {"name": "ann"}}]
    # user_id is not writable: the body cannot move the message to bob.
    error(mb_client.put(url, json={"id": 1, "content": "x", "user_id": 2}, headers=ann),
          400, "22023")
    assert rows(state.engine, "SELECT user_id, content FROM messages") == [
        {"user_id": 1, "content": "edited"}]
