"""Bodies are validated before anything is written: types, nullability, lengths and formats
from the model; unknown and read-only fields refused whole; bulk creates all or nothing; and
per-method overrides with a pydantic model or a JSON Schema."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pydantic
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from conftest import rows
from factories import add_user, insert, serving
from tablerest import Resource
from tablerest.extension import state_of
from testapp import Event, Tag


def fields_of(response: Any) -> list[str]:
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    return [error["field"] for error in response.json["errors"]]


@pytest.fixture
def author(engine: sa.Engine) -> int:
    return add_user(engine, "jane")


# -- from the model ----------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "field"), [
    ({"title": 123}, "title"),
    ({"title": None}, "title"),
    ({"title": "x" * 101}, "title"),
    ({"body": ["not", "text"]}, "body"),
    ({"published": "true"}, "published"),
    ({"published": 1}, "published"),
    ({"rating": "abc"}, "rating"),
    ({"rating": True}, "rating"),
    ({"rating": "NaN"}, "rating"),
    ({"user_id": "1"}, "user_id"),
    ({"user_id": 1.5}, "user_id"),
    ({"user_id": True}, "user_id"),
    ({"user_id": None}, "user_id"),
    ({"user_id": 10**30}, "user_id"),
], ids=["text-as-number", "required-null", "too-long", "text-as-list", "bool-as-string",
        "bool-as-number", "decimal-as-word", "decimal-as-bool", "decimal-nan", "int-as-string",
        "int-as-float", "int-as-bool", "foreign-key-null", "int-too-big"])
def test_wrong_values_are_422_naming_the_field(client: FlaskClient, engine: sa.Engine,
                                               author: int, change: dict[str, Any],
                                               field: str) -> None:
    body = {"title": "hello", "user_id": author, **change}
    assert fields_of(client.post("/posts", json=body)) == [field]
    assert rows(engine, "SELECT id FROM posts") == []


def test_missing_required_fields_are_all_named(client: FlaskClient, engine: sa.Engine) -> None:
    response = client.post("/posts", json={"body": "no title, no author"})
    assert sorted(fields_of(response)) == ["title", "user_id"]
    assert all(error["message"] == "This field is required."
               for error in response.json["errors"])
    assert rows(engine, "SELECT id FROM posts") == []


def test_patch_validates_the_fields_sent(client: FlaskClient, engine: sa.Engine) -> None:
    user = add_user(engine, "jane", age=30)
    assert fields_of(client.patch(f"/users/{user}", json={"name": None})) == ["name"]
    assert fields_of(client.patch(f"/users/{user}", json={"age": "31"})) == ["age"]
    assert rows(engine, "SELECT name, age FROM users") == [{"name": "jane", "age": 30}]


@pytest.mark.parametrize(("label", "accepted"), [
    ("x" * 100, True), ("x" * 101, False), ("é" * 100, True), ("日本" * 50, True), ("", True),
], ids=["at-limit", "over-limit", "accents-count-as-characters", "cjk-at-limit", "empty"])
def test_string_length_is_counted_in_characters(client: FlaskClient, engine: sa.Engine,
                                                label: str, accepted: bool) -> None:
    insert(engine, Tag, {"name": "t"})
    response = client.patch("/tags/t", json={"label": label})  # String(100)
    if accepted:
        assert response.status_code == 200, response.json
        assert rows(engine, "SELECT label FROM tags") == [{"label": label}]
    else:
        assert fields_of(response) == ["label"]
        assert rows(engine, "SELECT label FROM tags") == [{"label": None}]


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "jane@@example.com",
                                   "jane doe@example.com", ""],
                         ids=["no-at", "no-domain", "no-local", "two-ats", "space", "empty"])
def test_invalid_email_is_422(client: FlaskClient, engine: sa.Engine, email: str) -> None:
    user = add_user(engine, "jane")
    assert fields_of(client.patch(f"/users/{user}", json={"email": email})) == ["email"]
    assert rows(engine, "SELECT email FROM users") == [{"email": "jane@example.com"}]


def test_valid_email_is_stored(client: FlaskClient, engine: sa.Engine) -> None:
    user = add_user(engine, "jane")
    response = client.patch(f"/users/{user}", json={"email": "jane.doe+tag@example.org"})
    assert response.status_code == 200
    assert rows(engine, "SELECT email FROM users") == [{"email": "jane.doe+tag@example.org"}]


@pytest.mark.parametrize(("value", "accepted"), [
    ("2024-02-29", True), ("2023-02-29", False), ("2024-13-01", False), ("yesterday", False),
    (20240101, False), ("2024-02-29T10:00:00", False),
], ids=["leap-day", "not-a-leap-year", "month-13", "word", "number", "datetime"])
def test_date_fields(client: FlaskClient, engine: sa.Engine, value: Any,
                     accepted: bool) -> None:
    response = client.post("/documents", json={"title": "d", "published_on": value})
    if accepted:
        assert response.status_code == 201
        assert response.json["published_on"] == value
        [stored] = rows(engine, "SELECT published_on FROM documents")
        assert str(stored["published_on"]) == value
    else:
        assert fields_of(response) == ["published_on"]
        assert rows(engine, "SELECT id FROM documents") == []


# -- unknown and read-only fields --------------------------------------------------------------


@pytest.mark.parametrize(("body", "errors"), [
    ({"nope": 1}, [("nope", "unknown")]),
    ({"id": 5}, [("id", "read-only")]),
    ({"created_at": "2020-01-01T00:00:00Z"}, [("created_at", "read-only")]),
    ({"updated_at": "2020-01-01T00:00:00Z"}, [("updated_at", "read-only")]),
    ({"posts": []}, [("posts", "unknown")]),
    ({"__class__": "x", "id": 1}, [("__class__", "unknown"), ("id", "read-only")]),
], ids=["unknown", "key", "created_at", "updated_at", "relationship", "both"])
def test_fields_that_cannot_be_set_refuse_the_whole_body(
        client: FlaskClient, engine: sa.Engine, body: dict[str, Any],
        errors: list[tuple[str, str]]) -> None:
    user = add_user(engine, "jane", age=30)
    full = {"name": "joan", "email": "joan@example.com", "password": "pw-pw-pw", "age": 31,
            **body}
    for method, path in [("post", "/users"), ("patch", f"/users/{user}"),
                         ("put", f"/users/{user}")]:
        response = getattr(client, method)(path, json=full)
        assert response.status_code == 422, method
        assert [(error["field"], error["message"]) for error in response.json["errors"]] == [
            (field, f"This field is {kind}.") for field, kind in errors], method
        for field, _ in errors:
            assert repr(field) in response.json["detail"]
    assert rows(engine, "SELECT id, name, age FROM users") == [
        {"id": user, "name": "jane", "age": 30}]


@pytest.mark.parametrize("body", ["[1]", '"text"', "5", "null", "true"],
                         ids=["list-of-numbers", "string", "number", "null", "bool"])
def test_a_body_that_is_not_an_object_is_400(client: FlaskClient, engine: sa.Engine,
                                             body: str) -> None:
    response = client.post("/tags", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert rows(engine, "SELECT name FROM tags") == []


# -- bulk create -------------------------------------------------------------------------------


def test_bulk_create_returns_every_item(client: FlaskClient, engine: sa.Engine) -> None:
    response = client.post("/tags", json=[{"name": "a"}, {"name": "b", "label": "B"}])
    assert response.status_code == 201
    assert response.json == [{"name": "a", "label": None}, {"name": "b", "label": "B"}]
    assert rows(engine, "SELECT name, label FROM tags ORDER BY name") == response.json


@pytest.mark.parametrize(("items", "status", "field"), [
    ([{"name": "ok"}, {"name": "x" * 31}], 422, "[1].name"),
    ([{"name": "ok"}, {"name": "two", "nope": 1}], 422, "[1].nope"),
    ([{"name": "ok"}, {"label": "no key"}], 422, "[1].name"),
    ([{"name": "ok"}, {"name": "taken"}], 409, "name"),
    ([{"name": "same"}, {"name": "same"}], 409, "name"),
    ([{"name": "ok"}, ["not an object"]], 400, None),
    ([], 400, None),
], ids=["invalid", "unknown-field", "missing-key", "conflict-with-stored",
        "conflict-within-batch", "not-an-object", "empty"])
def test_bulk_create_is_all_or_nothing(client: FlaskClient, engine: sa.Engine,
                                       items: list[Any], status: int,
                                       field: str | None) -> None:
    insert(engine, Tag, {"name": "taken"})
    response = client.post("/tags", json=items)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    if field is not None:
        assert field in [error["field"] for error in response.json["errors"]]
    assert rows(engine, "SELECT name FROM tags") == [{"name": "taken"}]


# -- pydantic overrides ------------------------------------------------------------------------


class TagIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    name: str = pydantic.Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=30)
    label: str | None = None

    @pydantic.field_validator("label")
    @classmethod
    def _tidy(cls, value: str | None) -> str | None:
        return None if value is None else " ".join(value.split()).capitalize()


class TagRename(pydantic.BaseModel):
    label: str = pydantic.Field(min_length=3)


def test_pydantic_override_validates_and_shapes_the_values(db_url: str) -> None:
    with serving(db_url, Resource(Tag, schemas={"create": TagIn})) as app:
        client, engine = app.test_client(), state_of(app).engine
        refused = client.post("/tags", json={"name": "Not A Slug"})
        assert fields_of(refused) == ["name"]
        assert rows(engine, "SELECT name FROM tags") == []
        created = client.post("/tags", json={"name": "sql", "label": "  structured   query "})
        assert created.status_code == 201
        assert created.json == {"name": "sql", "label": "Structured query"}
        assert rows(engine, "SELECT name, label FROM tags") == [
            {"name": "sql", "label": "Structured query"}]


class TagLabel(pydantic.BaseModel):
    label: str | None = pydantic.Field(None, min_length=3)


def test_pydantic_override_applies_to_its_method_only(db_url: str) -> None:
    with serving(db_url, Resource(Tag, schemas={"update": TagLabel})) as app:
        client, engine = app.test_client(), state_of(app).engine
        # create has no override: the model's rules apply (String(100), any length below)
        assert client.post("/tags", json={"name": "sql", "label": "ab"}).status_code == 201
        assert fields_of(client.post("/tags", json={"name": "x", "label": "x" * 101})) == [
            "label"]
        # update has one: at least three characters
        assert fields_of(client.patch("/tags/sql", json={"label": "ab"})) == ["label"]
        assert rows(engine, "SELECT name, label FROM tags") == [{"name": "sql", "label": "ab"}]
        assert client.patch("/tags/sql", json={"label": "abc"}).status_code == 200
        assert rows(engine, "SELECT name, label FROM tags") == [{"name": "sql", "label": "abc"}]


def test_star_override_applies_to_every_method(db_url: str) -> None:
    with serving(db_url, Resource(Tag, schemas={"*": TagLabel})) as app:
        client, engine = app.test_client(), state_of(app).engine
        insert(engine, Tag, {"name": "sql", "label": "old"})
        assert fields_of(client.post("/tags", json={"name": "x", "label": "ab"})) == ["label"]
        assert fields_of(client.patch("/tags/sql", json={"label": "ab"})) == ["label"]
        assert fields_of(client.put("/tags/sql", json={"label": "ab"})) == ["label"]
        assert rows(engine, "SELECT name, label FROM tags") == [{"name": "sql", "label": "old"}]


class PostWithExtra(pydantic.BaseModel):
    title: str
    user_id: int
    mood: str = "happy"


def test_pydantic_override_cannot_write_fields_the_resource_does_not_have(db_url: str) -> None:
    from testapp import Post

    with serving(db_url, Resource(Post, schemas={"create": PostWithExtra})) as app:
        client, engine = app.test_client(), state_of(app).engine
        author = add_user(engine, "jane")
        response = client.post("/posts", json={"title": "t", "user_id": author, "mood": "sad"})
        assert response.status_code == 422
        assert "mood" in [error["field"] for error in response.json["errors"]]
        assert rows(engine, "SELECT id FROM posts") == []


# -- JSON Schema overrides (the events resource of the test app) -------------------------------

EVENT = {"name": "launch", "day": "2024-06-01"}


@pytest.mark.parametrize(("change", "field"), [
    ({"name": "ab"}, "name"),
    ({"name": 123}, "name"),
    ({"day": "2024-13-01"}, "day"),
    ({"day": "2023-02-29"}, "day"),
    ({"day": "01/06/2024"}, "day"),
    ({"starts_at": "2024-06-01"}, "starts_at"),
    ({"starts_at": "2024-06-01T25:00:00Z"}, "starts_at"),
    ({"starts_at": "soon"}, "starts_at"),
    ({"ref": "not-a-uuid"}, "ref"),
    ({"ref": "1234"}, "ref"),
], ids=["too-short", "wrong-type", "date-month-13", "date-not-leap", "date-format",
        "date-time-without-time", "date-time-hour-25", "date-time-word", "uuid-word",
        "uuid-short"])
def test_json_schema_override_refuses(client: FlaskClient, engine: sa.Engine,
                                      change: dict[str, Any], field: str) -> None:
    assert fields_of(client.post("/events", json={**EVENT, **change})) == [field]
    assert rows(engine, "SELECT id FROM events") == []


def test_json_schema_names_a_missing_required_field(client: FlaskClient,
                                                    engine: sa.Engine) -> None:
    assert fields_of(client.post("/events", json={"name": "launch"})) == ["day"]
    assert rows(engine, "SELECT id FROM events") == []


def test_json_schema_override_stores_typed_values(client: FlaskClient, engine: sa.Engine) -> None:
    ref = uuid.uuid4()
    response = client.post("/events", json={**EVENT, "starts_at": "2024-06-01T12:30:00+02:00",
                                             "ref": str(ref)})
    assert response.status_code == 201
    assert response.json["day"] == "2024-06-01"
    assert response.json["starts_at"] == "2024-06-01T10:30:00+00:00"
    assert response.json["ref"] == str(ref)
    read = client.get(response.headers["Location"]).json
    assert read == response.json
    with engine.connect() as connection:
        stored = connection.execute(sa.select(Event.__table__)).one()
    assert stored.day == dt.date(2024, 6, 1)
    starts_at = stored.starts_at if stored.starts_at.tzinfo else stored.starts_at.replace(
        tzinfo=dt.UTC)  # SQLite keeps UTC without the offset
    assert starts_at == dt.datetime(2024, 6, 1, 10, 30, tzinfo=dt.UTC)
    assert stored.ref == str(ref)


def test_json_schema_override_applies_to_its_methods_only(client: FlaskClient,
                                                          engine: sa.Engine) -> None:
    [event] = insert(engine, Event, {"name": "launch", "day": dt.date(2024, 6, 1)})
    # update has no override: the model allows a two-letter name
    assert client.patch(f"/events/{event}", json={"name": "go"}).status_code == 200
    # replace has the schema: minLength 3
    assert fields_of(client.put(f"/events/{event}", json={**EVENT, "name": "go"})) == ["name"]
    assert rows(engine, "SELECT name FROM events") == [{"name": "go"}]
