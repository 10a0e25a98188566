"""Items over HTTP: create, read, update, replace, delete; integer, string, UUID and composite
keys; to-many relationships and many-to-many links. Every write is checked in the database."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from conftest import rows
from factories import PASSWORD_HASH, add_post, add_tags, add_user, link, serving
from tablerest import PasswordHash, Resource
from tablerest.extension import state_of
from testapp import Post, Tag

USER_FIELDS = {"id", "name", "email", "age", "created_at", "updated_at"}


def utc(text: str) -> dt.datetime:
    """An ISO 8601 datetime from a response, which must carry the UTC offset."""
    value = dt.datetime.fromisoformat(text)
    assert value.utcoffset() == dt.timedelta(0), text
    return value


def test_index_lists_every_resource_with_its_url(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    listed = {item["name"]: item["url"] for item in response.json["resources"]}
    assert listed == {name: f"/{name}" for name in (
        "users", "posts", "tags", "countries", "country_names", "documents", "events")}


# -- create and read ---------------------------------------------------------------------------


def test_create_returns_the_item_with_its_location(client: FlaskClient,
                                                   engine: sa.Engine) -> None:
    before = dt.datetime.now(dt.UTC)
    response = client.post("/users", json={"name": "jane", "email": "jane@example.com",
                                           "password": "s3cret-pass", "age": 41})
    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"] == f"/users/{body['id']}"
    assert set(body) == USER_FIELDS
    assert (body["name"], body["email"], body["age"]) == ("jane", "jane@example.com", 41)
    assert before <= utc(body["created_at"]) <= dt.datetime.now(dt.UTC)
    assert utc(body["updated_at"]) >= utc(body["created_at"])
    [stored] = rows(engine, "SELECT id, name, email, age, password FROM users")
    assert (stored["id"], stored["name"], stored["age"]) == (body["id"], "jane", 41)
    assert stored["password"].startswith("$argon2")
    assert PasswordHash(stored["password"]) == "s3cret-pass"


def test_created_item_reads_back_the_same(client: FlaskClient, engine: sa.Engine) -> None:
    created = client.post("/posts", json={"title": "hello", "user_id": add_user(engine, "ann"),
                                          "rating": "4.50", "published": True})
    assert created.status_code == 201
    read = client.get(created.headers["Location"])
    assert read.status_code == 200
    assert read.json == created.json
    assert read.json["rating"] == "4.50"  # decimals are strings, exact
    assert read.json["published"] is True


@pytest.mark.parametrize("path", ["/users/{id}", "/users", "/users?name=jane&sort=-id"],
                         ids=["item", "list", "filtered-list"])
def test_password_never_leaves_the_server(client: FlaskClient, engine: sa.Engine,
                                          path: str) -> None:
    user = add_user(engine, "jane")
    response = client.get(path.format(id=user))
    assert response.status_code == 200
    assert "password" not in response.get_data(as_text=True)
    assert PASSWORD_HASH not in response.get_data(as_text=True)


def test_password_is_not_in_write_responses(client: FlaskClient, engine: sa.Engine) -> None:
    user = add_user(engine, "jane")
    patched = client.patch(f"/users/{user}", json={"age": 3})
    replaced = client.put(f"/users/{user}", json={"name": "jane", "email": "j@example.com",
                                                  "password": "new-password"})
    assert (patched.status_code, replaced.status_code) == (200, 200)
    assert set(patched.json) == set(replaced.json) == USER_FIELDS


# -- update and replace ------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(client: FlaskClient, engine: sa.Engine) -> None:
    user = add_user(engine, "jane", age=30)
    before = client.get(f"/users/{user}").json
    response = client.patch(f"/users/{user}", json={"age": 31})
    assert response.status_code == 200
    body = response.json
    assert body["age"] == 31
    assert {k: body[k] for k in ("id", "name", "email", "created_at")} == {
        k: before[k] for k in ("id", "name", "email", "created_at")}
    assert utc(body["updated_at"]) > utc(before["updated_at"])
    [stored] = rows(engine, "SELECT name, email, age, password FROM users")
    assert stored == {"name": "jane", "email": "jane@example.com", "age": 31,
                      "password": str(PASSWORD_HASH)}


def test_patch_with_an_empty_body_changes_nothing(client: FlaskClient,
                                                  engine: sa.Engine) -> None:
    user = add_user(engine, "jane", age=30)
    before = client.get(f"/users/{user}").json
    response = client.patch(f"/users/{user}", json={})
    assert response.status_code == 200
    assert response.json == before
    assert client.get(f"/users/{user}").json == before


def test_patch_can_set_a_nullable_field_to_null(client: FlaskClient, engine: sa.Engine) -> None:
    user = add_user(engine, "jane", age=30)
    response = client.patch(f"/users/{user}", json={"age": None})
    assert response.status_code == 200
    assert response.json["age"] is None
    assert rows(engine, "SELECT age FROM users") == [{"age": None}]


def test_patch_password_stores_a_new_hash(client: FlaskClient, engine: sa.Engine) -> None:
    user = add_user(engine, "jane")
    response = client.patch(f"/users/{user}", json={"password": "another-secret"})
    assert response.status_code == 200
    assert "password" not in response.json
    [stored] = rows(engine, "SELECT password FROM users")
    assert stored["password"] != str(PASSWORD_HASH)
    assert PasswordHash(stored["password"]) == "another-secret"


def test_put_replaces_the_whole_item(client: FlaskClient, engine: sa.Engine) -> None:
    user = add_user(engine, "jane", age=30)
    response = client.put(f"/users/{user}", json={"name": "joan", "email": "joan@example.com",
                                                  "password": "pw-replaced"})
    assert response.status_code == 200
    assert response.json["age"] is None  # omitted and nullable: replaced by null
    assert (response.json["id"], response.json["name"]) == (user, "joan")
    [stored] = rows(engine, "SELECT id, name, email, age, password FROM users")
    assert {k: stored[k] for k in ("id", "name", "email", "age")} == {
        "id": user, "name": "joan", "email": "joan@example.com", "age": None}
    assert PasswordHash(stored["password"]) == "pw-replaced"


def test_put_requires_the_required_fields(client: FlaskClient, engine: sa.Engine) -> None:
    user = add_user(engine, "jane", age=30)
    response = client.put(f"/users/{user}", json={"name": "joan"})
    assert response.status_code == 422
    assert {error["field"] for error in response.json["errors"]} == {"email", "password"}
    assert rows(engine, "SELECT name, age FROM users") == [{"name": "jane", "age": 30}]


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_writes_to_a_missing_item_are_404_and_create_nothing(
        client: FlaskClient, engine: sa.Engine, method: str) -> None:
    body = {"title": "t", "user_id": 1}
    response = getattr(client, method)("/posts/7", **({} if method == "delete" else
                                                      {"json": body}))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert rows(engine, "SELECT id FROM posts") == []


# -- delete ------------------------------------------------------------------------------------


def test_delete_removes_the_item_and_cascades(client: FlaskClient, engine: sa.Engine) -> None:
    jane, john = add_user(engine, "jane"), add_user(engine, "john")
    janes = [add_post(engine, jane, "one"), add_post(engine, jane, "two")]
    johns = add_post(engine, john, "three")
    add_tags(engine, "python")
    link(engine, janes[0], "python")
    link(engine, johns, "python")
    response = client.delete(f"/users/{jane}")
    assert response.status_code == 204
    assert response.data == b""
    assert rows(engine, "SELECT id FROM users") == [{"id": john}]
    assert rows(engine, "SELECT id FROM posts") == [{"id": johns}]
    assert rows(engine, "SELECT post_id FROM post_tags") == [{"post_id": johns}]
    assert rows(engine, "SELECT name FROM tags") == [{"name": "python"}]
    assert client.get(f"/users/{jane}").status_code == 404
    assert client.delete(f"/users/{jane}").status_code == 404


def test_delete_forbidden_by_a_foreign_key_is_409(client: FlaskClient, engine: sa.Engine) -> None:
    client.post("/countries", json={"code": "fr", "name": "France"})
    client.post("/country_names", json={"country_code": "fr", "lang": "de", "name": "Frankreich"})
    client.post("/country_names", json={"country_code": "fr", "lang": "en", "name": "France"})
    response = client.delete("/countries/fr")
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    # It names what still refers to the item, and how many rows.
    assert response.get_json()["errors"] == [
        {"field": "country_names", "message": "2 rows still refer to this item."}]
    assert rows(engine, "SELECT code FROM countries") == [{"code": "fr"}]
    assert rows(engine, "SELECT lang FROM country_names ORDER BY lang") == [
        {"lang": "de"}, {"lang": "en"}]


# -- keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/users/999", "/users/abc", "/users/1.5", "/users/1,1", "/users/-1",
    "/countries/zz", "/documents/not-a-uuid", f"/documents/{uuid.UUID(int=1)}",
    "/country_names/fr", "/country_names/fr,en,de", "/country_names/en,fr",
], ids=["int-missing", "int-text", "int-float", "int-two-parts", "int-negative",
        "string-missing", "uuid-malformed", "uuid-missing",
        "composite-one-part", "composite-three-parts", "composite-swapped"])
def test_unknown_or_malformed_keys_are_404(client: FlaskClient, path: str) -> None:
    client.post("/countries", json={"code": "fr", "name": "France"})
    client.post("/country_names", json={"country_code": "fr", "lang": "en", "name": "France"})
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 404


def test_string_key_is_chosen_by_the_client(client: FlaskClient, engine: sa.Engine) -> None:
    response = client.post("/countries", json={"code": "fr", "name": "France"})
    assert response.status_code == 201
    assert response.headers["Location"] == "/countries/fr"
    assert client.get("/countries/fr").json == {"code": "fr", "name": "France"}
    patched = client.patch("/countries/fr", json={"name": "République française"})
    assert patched.json == {"code": "fr", "name": "République française"}
    assert rows(engine, "SELECT code, name FROM countries") == [
        {"code": "fr", "name": "République française"}]
    missing = client.post("/countries", json={"name": "Nowhere"})
    assert missing.status_code == 422
    assert [error["field"] for error in missing.json["errors"]] == ["code"]
    assert client.delete("/countries/fr").status_code == 204
    assert rows(engine, "SELECT code FROM countries") == []


@pytest.mark.parametrize(("path", "body", "key"), [
    ("/countries/fr", {"code": "de", "name": "Germany"}, "code"),
    ("/country_names/fr,en", {"lang": "de", "name": "Frankreich"}, "lang"),
], ids=["string-key", "composite-key"])
def test_a_key_cannot_change_after_create(client: FlaskClient, engine: sa.Engine, path: str,
                                          body: dict[str, Any], key: str) -> None:
    client.post("/countries", json={"code": "fr", "name": "France"})
    client.post("/country_names", json={"country_code": "fr", "lang": "en", "name": "France"})
    before = rows(engine, "SELECT * FROM countries"), rows(engine, "SELECT * FROM country_names")
    for method in ("patch", "put"):
        response = getattr(client, method)(path, json=body)
        assert response.status_code == 422, method
        assert response.json["errors"] == [{"field": key, "message": "This field is read-only."}]
    assert (rows(engine, "SELECT * FROM countries"),
            rows(engine, "SELECT * FROM country_names")) == before
    # PUT replaces everything but the key, which the URL gives
    replaced = client.put(path, json={"name": "Frankreich"})
    assert replaced.status_code == 200, replaced.json
    assert replaced.json["name"] == "Frankreich"
    assert client.get(path).json == replaced.json


@pytest.mark.parametrize("name", ["machine learning", "café", "c++", "a,b", "100%", "x?y#z"],
                         ids=["space", "unicode", "plus", "comma", "percent", "query-chars"])
def test_location_of_a_string_key_leads_back_to_the_item(client: FlaskClient,
                                                         name: str) -> None:
    response = client.post("/tags", json={"name": name})
    assert response.status_code == 201
    location = response.headers["Location"]
    assert " " not in location and "?" not in location and "#" not in location
    read = client.get(location)
    assert read.status_code == 200
    assert read.json == {"name": name, "label": None}


def test_a_key_with_a_slash_is_refused_or_reachable(client: FlaskClient,
                                                    engine: sa.Engine) -> None:
    response = client.post("/tags", json={"name": "ci/cd"})
    if response.status_code == 422:  # refusing a key that cannot be in a URL segment is fine
        assert [error["field"] for error in response.json["errors"]] == ["name"]
        assert rows(engine, "SELECT name FROM tags") == []
    else:  # but an item the API creates must be reachable at the URL it gives
        assert response.status_code == 201
        assert client.get(response.headers["Location"]).json == {"name": "ci/cd", "label": None}


def test_uuid_key_is_generated(client: FlaskClient, engine: sa.Engine) -> None:
    response = client.post("/documents", json={"title": "spec", "published_on": "2024-02-29"})
    assert response.status_code == 201
    key = uuid.UUID(response.json["id"])
    assert key.version == 4
    assert response.headers["Location"] == f"/documents/{key}"
    assert response.json["published_on"] == "2024-02-29"
    assert client.get(f"/documents/{key}").json == response.json
    # One URL per item: the canonical (lower-case) form only.
    assert client.get(f"/documents/{str(key).upper()}").status_code == 404
    [stored] = rows(engine, "SELECT id, title FROM documents")
    assert uuid.UUID(str(stored["id"])) == key
    assert stored["title"] == "spec"


def test_uuid_key_cannot_be_chosen_by_the_client(client: FlaskClient, engine: sa.Engine) -> None:
    response = client.post("/documents", json={"id": str(uuid.uuid4()), "title": "spec"})
    assert response.status_code == 422
    assert response.json["errors"] == [{"field": "id", "message": "This field is read-only."}]
    assert rows(engine, "SELECT id FROM documents") == []


def test_composite_key_in_key_column_order(client: FlaskClient, engine: sa.Engine) -> None:
    client.post("/countries", json={"code": "fr", "name": "France"})
    response = client.post("/country_names",
                           json={"country_code": "fr", "lang": "de", "name": "Frankreich"})
    assert response.status_code == 201
    assert response.headers["Location"] == "/country_names/fr,de"
    assert client.get("/country_names/fr,de").json == {
        "country_code": "fr", "lang": "de", "name": "Frankreich"}
    assert client.get("/country_names/de,fr").status_code == 404
    patched = client.patch("/country_names/fr,de", json={"name": "Frankreich!"})
    assert patched.status_code == 200
    assert rows(engine, "SELECT country_code, lang, name FROM country_names") == [
        {"country_code": "fr", "lang": "de", "name": "Frankreich!"}]
    assert client.delete("/country_names/fr,de").status_code == 204
    assert rows(engine, "SELECT lang FROM country_names") == []


# -- to-many relationships ---------------------------------------------------------------------


def test_to_many_list_holds_only_the_parents_children(client: FlaskClient,
                                                      engine: sa.Engine) -> None:
    jane, john = add_user(engine, "jane"), add_user(engine, "john")
    janes = [add_post(engine, jane, "a", published=True), add_post(engine, jane, "b")]
    add_post(engine, john, "c", published=True)
    response = client.get(f"/users/{jane}/posts")
    assert response.status_code == 200
    assert [item["id"] for item in response.json["items"]] == janes
    assert response.json["count"] == len(janes)
    published = client.get(f"/users/{jane}/posts?published=true&fields=id")
    assert published.json["items"] == [{"id": janes[0]}]
    assert published.json["count"] == 1


def test_to_many_list_of_a_missing_parent_is_404(client: FlaskClient) -> None:
    response = client.get("/users/42/posts")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_create_under_a_parent_fills_the_foreign_key(client: FlaskClient,
                                                     engine: sa.Engine) -> None:
    jane = add_user(engine, "jane")
    response = client.post(f"/users/{jane}/posts", json={"title": "mine"})
    assert response.status_code == 201
    assert response.json["user_id"] == jane
    assert response.headers["Location"] == f"/posts/{response.json['id']}"
    assert rows(engine, "SELECT user_id, title FROM posts") == [
        {"user_id": jane, "title": "mine"}]


@pytest.mark.parametrize(("parent", "body", "status"), [
    ("jane", {"title": "t", "user_id": "john"}, 422),
    ("jane", {"title": None}, 422),
    ("jane", {"title": "t", "nope": 1}, 422),
    ("nobody", {"title": "t"}, 404),
    ("jane", ["title"], 400),
], ids=["foreign-key-in-body", "invalid", "unknown-field", "missing-parent", "not-an-object"])
def test_create_under_a_parent_refused(client: FlaskClient, engine: sa.Engine, parent: str,
                                       body: Any, status: int) -> None:
    ids = {"jane": add_user(engine, "jane"), "john": add_user(engine, "john"), "nobody": 999}
    if isinstance(body, dict) and "user_id" in body:  # another author than the URL's
        body = {**body, "user_id": ids[body["user_id"]]}
    response = client.post(f"/users/{ids[parent]}/posts", json=body)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert rows(engine, "SELECT id FROM posts") == []


# -- many-to-many links ------------------------------------------------------------------------


def test_link_and_unlink_are_idempotent(client: FlaskClient, engine: sa.Engine) -> None:
    post = add_post(engine, add_user(engine, "jane"), "hello")
    add_tags(engine, "python", "sql")
    for _ in range(2):
        response = client.put(f"/posts/{post}/tags/python")
        assert response.status_code == 204
        assert response.data == b""
        [stored] = rows(engine, "SELECT post_id, tag_name, created_at FROM post_tags")
        assert (stored["post_id"], stored["tag_name"]) == (post, "python")
        assert stored["created_at"] is not None
    listed = client.get(f"/posts/{post}/tags")
    assert listed.json["items"] == [{"name": "python", "label": None}]
    for _ in range(2):
        assert client.delete(f"/posts/{post}/tags/python").status_code == 204
        assert rows(engine, "SELECT post_id FROM post_tags") == []
    assert rows(engine, "SELECT name FROM tags ORDER BY name") == [
        {"name": "python"}, {"name": "sql"}]


@pytest.mark.parametrize(("post", "tag"), [("{post}", "missing"), ("999", "python")],
                         ids=["missing-tag", "missing-post"])
@pytest.mark.parametrize("method", ["put", "delete"])
def test_link_with_a_missing_side_is_404(client: FlaskClient, engine: sa.Engine, post: str,
                                         tag: str, method: str) -> None:
    post_id = add_post(engine, add_user(engine, "jane"), "hello")
    add_tags(engine, "python")
    response = getattr(client, method)(f"/posts/{post.format(post=post_id)}/tags/{tag}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert rows(engine, "SELECT post_id FROM post_tags") == []


def test_many_to_many_list_is_newest_link_first(client: FlaskClient, engine: sa.Engine) -> None:
    jane = add_user(engine, "jane")
    post, other = add_post(engine, jane, "hello"), add_post(engine, jane, "other")
    add_tags(engine, "a", "b", "c")
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    link(engine, post, "b", at=start)
    link(engine, post, "a", at=start + dt.timedelta(seconds=1))
    link(engine, post, "c", at=start + dt.timedelta(seconds=2))
    link(engine, other, "b", at=start + dt.timedelta(seconds=3))
    response = client.get(f"/posts/{post}/tags")
    assert response.status_code == 200
    assert [item["name"] for item in response.json["items"]] == ["c", "a", "b"]
    assert response.json["count"] == 3


def test_deleting_a_tag_removes_its_links_only(client: FlaskClient, engine: sa.Engine) -> None:
    post = add_post(engine, add_user(engine, "jane"), "hello")
    add_tags(engine, "python", "sql")
    link(engine, post, "python")
    link(engine, post, "sql")
    assert client.delete("/tags/python").status_code == 204
    assert rows(engine, "SELECT tag_name FROM post_tags") == [{"tag_name": "sql"}]
    assert rows(engine, "SELECT id FROM posts") == [{"id": post}]


# -- resource options --------------------------------------------------------------------------


def test_read_only_resource_refuses_writes(db_url: str) -> None:
    with serving(db_url, Resource(Tag, allow_writes=False)) as app:
        client, engine = app.test_client(), state_of(app).engine
        created = client.post("/tags", json={"name": "python"})
        assert created.status_code == 405
        assert "POST" not in created.headers["Allow"]
        assert "GET" in created.headers["Allow"]
        add_tags(engine, "python")
        for method in ("patch", "put", "delete"):
            response = getattr(client, method)("/tags/python", json={"label": "x"})
            assert response.status_code == 405, method
        assert client.get("/tags/python").json == {"name": "python", "label": None}
        assert rows(engine, "SELECT name, label FROM tags") == [{"name": "python", "label": None}]


def test_hidden_field_is_write_only(db_url: str) -> None:
    with serving(db_url, Resource(Tag, hidden=("label",))) as app:
        client, engine = app.test_client(), state_of(app).engine
        response = client.post("/tags", json={"name": "python", "label": "secret label"})
        assert response.status_code == 201
        assert response.json == {"name": "python"}
        assert client.get("/tags/python").json == {"name": "python"}
        assert "secret label" not in client.get("/tags").get_data(as_text=True)
        for query in ("label=x", "sort=label", "fields=label", "label__isnull=true"):
            assert client.get(f"/tags?{query}").status_code == 400, query
        assert rows(engine, "SELECT label FROM tags") == [{"label": "secret label"}]


def test_writable_whitelist_makes_other_fields_read_only(db_url: str) -> None:
    with serving(db_url, Resource(Post, writable=("title", "body", "user_id"))) as app:
        client, engine = app.test_client(), state_of(app).engine
        jane = add_user(engine, "jane")
        refused = client.post("/posts", json={"title": "t", "user_id": jane, "published": True})
        assert refused.status_code == 422
        assert refused.json["errors"] == [
            {"field": "published", "message": "This field is read-only."}]
        assert rows(engine, "SELECT id FROM posts") == []
        created = client.post("/posts", json={"title": "t", "user_id": jane})
        assert created.status_code == 201
        assert created.json["published"] is False
