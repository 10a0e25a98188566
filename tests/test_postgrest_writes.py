"""The PostgREST dialect's writes, over HTTP, on SQLite and PostgreSQL: inserts, upserts,
PATCH and DELETE by filter, Prefer (return, missing, resolution, tx, handling, max-affected),
the safety rails, and the microblog's tokens and row policies. What is in the database
afterwards is read with plain SQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from conftest import rows
from factories import live_server
from factories import postgrest_error as error
from tablerest.auth import issue_token
from tablerest.extension import state_of
from tablerest.postgrest import options_for, register

API = "/rest/v1"
REPRESENTATION = {"Prefer": "return=representation"}


@pytest.fixture
def pg(app: Flask, client: FlaskClient) -> FlaskClient:
    register(app, options_for(API, unfiltered_writes=("tags",),
                              max_affected={"countries": 2}))
    for code, name in (("fr", "France"), ("de", "Germany"), ("it", "Italy")):
        assert client.post("/countries", json={"code": code, "name": name}).status_code == 201
    assert client.post("/users", json={"name": "ann", "email": "ann@example.org",
                                       "password": "secret-pass"}).status_code == 201
    return client




def countries(engine: sa.Engine) -> dict[str, str]:
    return {row["code"]: row["name"] for row in rows(engine, "SELECT * FROM countries")}


# -- POST ---------------------------------------------------------------------------------------


def test_post_an_object_answers_201_with_no_body(pg: FlaskClient, engine: sa.Engine) -> None:
    response = pg.post(f"{API}/countries", json={"code": "es", "name": "Spain"})
    assert response.status_code == 201
    assert response.data == b""
    assert response.headers["Content-Range"] == "*/*"
    assert "Content-Type" not in response.headers
    assert countries(engine)["es"] == "Spain"


def test_post_an_array_with_columns_and_representation(pg: FlaskClient,
                                                       engine: sa.Engine) -> None:
    response = pg.post(f'{API}/countries?columns="code","name"&select=code,label:name',
                       json=[{"code": "es", "name": "Spain", "extra": 1},
                             {"code": "pt", "name": "Portugal"}],
                       headers=REPRESENTATION)
    assert response.status_code == 201
    assert response.json == [{"code": "es", "label": "Spain"},
                             {"code": "pt", "label": "Portugal"}]
    assert response.headers["Preference-Applied"] == "return=representation"
    assert {"es", "pt"} <= set(countries(engine))


def test_missing_columns_are_null_or_default(pg: FlaskClient, engine: sa.Engine) -> None:
    url = f'{API}/posts?columns="title","user_id","published"'
    body = [{"title": "a", "user_id": 1}]
    response = pg.post(url, json=body)
    error(response, 400, "22023")  # published: null is not allowed
    response = pg.post(url, json=body, headers={"Prefer": "missing=default, return=minimal"})
    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == "missing=default, return=minimal"
    assert rows(engine, "SELECT title, published FROM posts") == [
        {"title": "a", "published": False}]


def test_post_body_errors(pg: FlaskClient) -> None:
    body = error(pg.post(f"{API}/countries", json=[{"code": "es", "name": "Spain"},
                                                   {"code": "pt"}]), 400, "PGRST102")
    assert body["message"] == "All object keys must match"
    body = error(pg.post(f"{API}/countries", json={"code": "es", "nope": 1}), 400, "PGRST204")
    assert body["message"] == "Could not find the 'nope' column of 'countries' in the schema cache"
    error(pg.post(f"{API}/countries", data="{bad", content_type="application/json"), 400,
          "PGRST102")
    error(pg.post(f"{API}/countries", json=[]), 400, "PGRST102")
    error(pg.post(f"{API}/countries", json={"code": "fr", "name": "Again"}), 409, "23505")
    error(pg.post(f"{API}/posts", json={"title": "x", "user_id": 99}), 409, "23503")
    # a read-only field is refused, as tablerest's own routes refuse it
    error(pg.post(f"{API}/users", json={"name": "z", "email": "z@x.org", "password": "pw-12345",
                                        "id": 7}), 400, "22023")


def test_headers_only_gives_the_location(pg: FlaskClient) -> None:
    response = pg.post(f"{API}/countries", json={"code": "es", "name": "Spain"},
                       headers={"Prefer": "return=headers-only"})
    assert response.status_code == 201
    assert response.headers["Location"] == f"{API}/countries?code=eq.es"
    response = pg.post(f"{API}/country_names", json={"country_code": "fr", "lang": "en",
                                                     "name": "France"},
                       headers={"Prefer": "return=headers-only"})
    assert response.headers["Location"] == f"{API}/country_names?country_code=eq.fr&lang=eq.en"


def test_upsert_merge_duplicates(pg: FlaskClient, engine: sa.Engine) -> None:
    prefer = {"Prefer": "resolution=merge-duplicates, return=representation"}
    response = pg.post(f"{API}/countries", json=[{"code": "fr", "name": "République"}],
                       headers=prefer)
    assert response.status_code == 200  # nothing inserted
    assert response.json == [{"code": "fr", "name": "République"}]
    response = pg.post(f"{API}/countries", json=[{"code": "fr", "name": "France"},
                                                 {"code": "es", "name": "Spain"}],
                       headers=prefer)
    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == (
        "resolution=merge-duplicates, return=representation")
    assert countries(engine) == {"fr": "France", "de": "Germany", "it": "Italy", "es": "Spain"}


def test_upsert_ignore_duplicates_returns_only_inserted_rows(pg: FlaskClient,
                                                            engine: sa.Engine) -> None:
    response = pg.post(f"{API}/countries?on_conflict=code",
                       json=[{"code": "fr", "name": "X"}, {"code": "es", "name": "Spain"}],
                       headers={"Prefer": "resolution=ignore-duplicates,return=representation"})
    assert response.status_code == 201
    assert response.json == [{"code": "es", "name": "Spain"}]
    assert countries(engine)["fr"] == "France"


def test_upsert_on_a_unique_column_and_a_bad_target(pg: FlaskClient, engine: sa.Engine) -> None:
    response = pg.post(f"{API}/users?on_conflict=email",
                       json={"email": "ann@example.org", "name": "Ann", "password": "pw-123456"},
                       headers={"Prefer": "resolution=merge-duplicates"})
    assert response.status_code == 200
    assert rows(engine, "SELECT name FROM users") == [{"name": "Ann"}]
    error(pg.post(f"{API}/countries?on_conflict=name", json={"code": "fr", "name": "France"},
                  headers={"Prefer": "resolution=merge-duplicates"}), 400, "42P10")


# -- PATCH and DELETE ---------------------------------------------------------------------------


def test_patch_by_filter(pg: FlaskClient, engine: sa.Engine) -> None:
    response = pg.patch(f"{API}/countries?code=in.(fr,de)&select=code", json={"name": "EU"},
                        headers=REPRESENTATION)
    assert response.status_code == 200
    assert response.json == [{"code": "de"}, {"code": "fr"}]
    assert response.headers["Content-Range"] == "0-1/*"
    assert countries(engine) == {"fr": "EU", "de": "EU", "it": "Italy"}
    response = pg.patch(f"{API}/countries?code=eq.it", json={"name": "Italia"})
    assert (response.status_code, response.data) == (204, b"")
    response = pg.patch(f"{API}/countries?code=eq.zz", json={"name": "None"},
                        headers={"Prefer": "return=representation, count=exact"})
    assert (response.status_code, response.json) == (200, [])
    assert response.headers["Content-Range"] == "*/0"
    response = pg.patch(f"{API}/countries?code=eq.it", json={})
    assert response.status_code == 204
    assert countries(engine)["it"] == "Italia"
    error(pg.patch(f"{API}/countries?code=eq.it", json={"code": "xx"}), 400, "22023")


def test_delete_by_filter(pg: FlaskClient, engine: sa.Engine) -> None:
    response = pg.delete(f"{API}/countries?name=like.*an*",
                         headers={"Prefer": "return=representation, count=exact"})
    assert response.status_code == 200
    assert response.json == [{"code": "de", "name": "Germany"}, {"code": "fr", "name": "France"}]
    assert response.headers["Content-Range"] == "*/2"
    assert countries(engine) == {"it": "Italy"}
    response = pg.delete(f"{API}/countries?code=eq.it", json={})  # postgrest-py sends {}
    assert response.status_code == 204
    assert countries(engine) == {}


def test_a_write_without_filter_is_refused_unless_allowed(pg: FlaskClient,
                                                          engine: sa.Engine) -> None:
    error(pg.delete(f"{API}/countries"), 400, "21000")
    error(pg.patch(f"{API}/countries", json={"name": "x"}), 400, "21000")
    assert len(countries(engine)) == 3
    pg.post(f"{API}/tags", json=[{"name": "a"}, {"name": "b"}])
    response = pg.patch(f"{API}/tags", json={"label": "L"}, headers=REPRESENTATION)
    assert [tag["label"] for tag in response.json] == ["L", "L"]
    assert pg.delete(f"{API}/tags").status_code == 204
    assert rows(engine, "SELECT * FROM tags") == []


def test_max_affected(pg: FlaskClient, engine: sa.Engine) -> None:
    strict = {"Prefer": "handling=strict, max-affected=1"}
    body = error(pg.patch(f"{API}/countries?code=in.(fr,de)", json={"name": "x"},
                          headers=strict), 400, "PGRST124")
    assert body["details"] == "The query affects 2 rows"
    assert countries(engine)["fr"] == "France"
    response = pg.delete(f"{API}/countries?code=eq.fr", headers=strict)
    assert response.status_code == 204
    assert response.headers["Preference-Applied"] == "handling=strict, max-affected=1"
    # lenient handling ignores max-affected, but the resource's own maximum (2) holds
    response = pg.delete(f"{API}/countries?code=in.(de,it)",
                         headers={"Prefer": "max-affected=1"})
    assert response.status_code == 204
    pg.post(f"{API}/countries", json=[{"code": c, "name": c} for c in ("a1", "a2", "a3")])
    error(pg.delete(f"{API}/countries?code=like.a*"), 400, "PGRST124")
    assert len(countries(engine)) == 3


def test_tx_rollback_answers_and_keeps_nothing(pg: FlaskClient, engine: sa.Engine) -> None:
    prefer = {"Prefer": "tx=rollback, return=representation"}
    response = pg.post(f"{API}/countries", json={"code": "es", "name": "Spain"}, headers=prefer)
    assert response.status_code == 201
    assert response.json == [{"code": "es", "name": "Spain"}]
    assert response.headers["Preference-Applied"] == "return=representation, tx=rollback"
    response = pg.delete(f"{API}/countries?code=eq.fr", headers=prefer)
    assert response.json == [{"code": "fr", "name": "France"}]
    assert set(countries(engine)) == {"fr", "de", "it"}


def test_a_singular_write_of_many_rows_is_rolled_back(pg: FlaskClient,
                                                     engine: sa.Engine) -> None:
    body = error(pg.patch(f"{API}/countries?code=in.(fr,de)", json={"name": "x"},
                          headers={"Accept": "application/vnd.pgrst.object+json"}),
                 406, "PGRST116")
    assert body["details"] == "The result contains 2 rows"
    assert countries(engine)["fr"] == "France"
    response = pg.patch(f"{API}/countries?code=eq.fr", json={"name": "F"},
                        headers={"Accept": "application/vnd.pgrst.object+json",
                                 **REPRESENTATION})
    assert response.json == {"code": "fr", "name": "F"}


def test_strict_handling_refuses_unknown_preferences(pg: FlaskClient) -> None:
    body = error(pg.post(f"{API}/countries", json={"code": "es", "name": "S"},
                         headers={"Prefer": "handling=strict, nope=1"}), 400, "PGRST122")
    assert body["details"] == "Invalid preferences: nope=1"
    response = pg.post(f"{API}/countries", json={"code": "es", "name": "S"},
                       headers={"Prefer": "nope=1"})
    assert response.status_code == 201


def test_write_profile(pg: FlaskClient) -> None:
    error(pg.post(f"{API}/countries", json={"code": "es", "name": "S"},
                  headers={"Content-Profile": "other"}), 406, "PGRST106")
    response = pg.post(f"{API}/countries", json={"code": "es", "name": "S"},
                       headers={"Content-Profile": "public"})
    assert response.headers["Content-Profile"] == "public"


def test_representation_with_an_embed(pg: FlaskClient) -> None:
    response = pg.post(f"{API}/posts?select=title,author(name)",
                       json={"title": "t", "user_id": 1}, headers=REPRESENTATION)
    assert response.status_code == 201
    assert response.json == [{"title": "t", "author": {"name": "ann"}}]


# -- the microblog: tokens and row policies ------------------------------------------------------


@pytest.fixture
def blog(microblog: Flask, mb_client: FlaskClient) -> tuple[FlaskClient, dict[str, str],
                                                            dict[str, str]]:
    """The microblog (its dialect is on); ann and bob, two messages each; their tokens."""
    state = state_of(microblog)
    tokens = []
    for name in ("ann", "bob"):
        response = mb_client.post("/users", json={"name": name, "email": f"{name}@x.org",
                                                  "password": "password123"})
        assert response.status_code == 201
        token = issue_token(state, response.json["id"])["access_token"]
        tokens.append({"Authorization": f"Bearer {token}"})
        for text in ("one", "two"):
            assert mb_client.post(f"{API}/messages", json={"content": f"{name} {text}"},
                                  headers=tokens[-1]).status_code == 201
    return mb_client, tokens[0], tokens[1]


def test_posting_needs_a_token_and_posts_as_the_caller(blog: Any, microblog: Flask) -> None:
    client, ann, _ = blog
    error(client.post(f"{API}/messages", json={"content": "anon"}), 401, "42501")
    body = error(client.get(f"{API}/messages", headers={"Authorization": "Bearer nope"}),
                 401, "PGRST301")
    assert body["message"] == "The token is not valid."
    error(client.post(f"{API}/messages", json={"content": "x", "user_id": 2}, headers=ann),
          400, "22023")  # user_id is not writable
    engine = state_of(microblog).engine
    assert rows(engine, "SELECT user_id, content FROM messages ORDER BY id")[0] == {
        "user_id": 1, "content": "ann one"}


def test_patch_and_delete_touch_only_the_callers_rows(blog: Any, microblog: Flask) -> None:
    client, ann, bob = blog
    engine = state_of(microblog).engine
    response = client.patch(f"{API}/messages?id=gte.0&select=id,content",
                            json={"content": "edited"}, headers={**bob, **REPRESENTATION})
    assert response.status_code == 200
    assert response.json == [{"id": 3, "content": "edited"}, {"id": 4, "content": "edited"}]
    assert [row["content"] for row in rows(engine, "SELECT content FROM messages ORDER BY id")
            ] == ["ann one", "ann two", "edited", "edited"]
    response = client.delete(f"{API}/messages?content=like.*one",
                             headers={**bob, "Prefer": "count=exact"})
    assert response.status_code == 204
    assert response.headers["Content-Range"] == "*/0"
    response = client.delete(f"{API}/messages?id=gte.0", headers=ann)
    assert response.status_code == 204
    assert [row["user_id"] for row in rows(engine, "SELECT user_id FROM messages")] == [2, 2]
    error(client.delete(f"{API}/messages?id=gte.0"), 401, "42501")


def test_users_hide_passwords_and_ambiguous_embeds_are_300(blog: Any) -> None:
    client, _, _ = blog
    error(client.get(f"{API}/users?select=password"), 400, "42703")
    error(client.get(f"{API}/users?password=eq.x"), 400, "42703")
    body = error(client.get(f"{API}/users?select=name,users(name)"), 300, "PGRST201")
    assert body["hint"].startswith("Try changing 'users' to one of the following: "
                                   "'users!following', 'users!followers'")
    response = client.get(f"{API}/users?select=name,users!following(name)&order=id")
    assert response.json == [{"name": "ann", "users": []}, {"name": "bob", "users": []}]
    response = client.post(f"{API}/users", json={"name": "cy", "email": "cy@x.org",
                                                 "password": "password123"},
                           headers=REPRESENTATION)
    assert response.status_code == 201
    assert "password" not in response.json[0]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("resolution", ["merge-duplicates", "ignore-duplicates", "put"])
def test_concurrent_upserts_of_one_new_key_all_succeed(app: Flask, pg: FlaskClient,
                                                       engine: sa.Engine,
                                                       resolution: str) -> None:
    # Clients upsert the same new key at once: one inserts, the others merge (or leave it),
    # as PostgREST's INSERT ... ON CONFLICT does; none gets a 409. Many keys, many tries.
    clients, keys = 6, [f"{letter}{digit}" for letter in "qrs" for digit in range(10)]
    barrier = threading.Barrier(clients)

    def upsert(client: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=base, timeout=30) as http:
            for code in keys:
                barrier.wait()
                row = {"code": code, "name": f"{code} {client}"}
                if resolution == "put":  # PUT by the key: insert or replace
                    response = http.put(f"{API}/countries?code=eq.{code}", json=row)
                else:
                    response = http.post(f"{API}/countries", json=row,
                                         headers={"Prefer": f"resolution={resolution}"})
                statuses.append(response.status_code)
        return statuses

    with live_server(app) as base, ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(upsert, range(clients)))
    assert {status for statuses in answers for status in statuses} <= {200, 201, 204}, answers
    if resolution == "merge-duplicates":  # per key, one created it, the others merged
        for index in range(len(keys)):
            assert [statuses[index] for statuses in answers].count(201) == 1, answers
    stored = countries(engine)
    assert all(stored[code].startswith(code) for code in keys)
