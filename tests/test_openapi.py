"""The OpenAPI document (``GET /openapi.json``) and the docs page (``GET /docs``).

The document must be valid OpenAPI 3.1 and exact: every route tablerest serves is in it, and
nothing else. Real responses of the test app are checked against the schemas it documents;
``test_schemathesis.py`` fuzzes the microblog against it.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, FormatChecker
from microblog.app import create_app as create_microblog
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from werkzeug.test import TestResponse

from conftest import SECRET
from tablerest import TableRest
from tablerest.extension import state_of
from tablerest.openapi import openapi_document, register_openapi
from tablerest.reflection import create_app as reflect_app
from testapp import Base, Tag, create_app

DOC_ENDPOINTS = {"tablerest.openapi", "tablerest.docs", "tablerest.docs_static"}
PROBLEM = "application/problem+json"
ARGUMENT = re.compile(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>")


# -- apps ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment wins over app.config: a developer's settings stay out of these apps."""
    for name in ("DATABASE_URL", "FLASK_CONFIG_PREFIXES", "TABLEREST_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)


def _testapp(tmp_path: Path) -> Flask:
    app = create_app(f"sqlite:///{tmp_path / 'test.db'}")
    register_openapi(app)
    Base.metadata.create_all(state_of(app).engine)
    return app


def _microblog(tmp_path: Path) -> Flask:
    app = create_microblog({"DATABASE_URL": f"sqlite:///{tmp_path / 'microblog.db'}",
                            "TABLEREST_SECRET_KEY": SECRET})
    register_openapi(app)
    return app


def _reflected(tmp_path: Path) -> Flask:
    """A database made in SQL: a composite key, a table without a key, a view."""
    path = tmp_path / "reflected.db"
    with sqlite3.connect(path) as connection:
        connection.executescript("""
            CREATE TABLE "Artist" ("ArtistId" INTEGER PRIMARY KEY, "Name" TEXT NOT NULL);
            CREATE TABLE "Album" ("AlbumId" INTEGER PRIMARY KEY, "Title" VARCHAR(160),
                "ArtistId" INTEGER NOT NULL REFERENCES "Artist" ("ArtistId"),
                "Price" NUMERIC(10, 2), "Released" DATETIME);
            CREATE TABLE "Credit" ("AlbumId" INTEGER REFERENCES "Album" ("AlbumId"),
                "Role" VARCHAR(20), "Person" TEXT, PRIMARY KEY ("AlbumId", "Role"));
            CREATE TABLE "log" ("at" TEXT, "line" TEXT);
            CREATE VIEW "artist names" AS SELECT "Name" FROM "Artist";
        """)
    connection.close()
    app = reflect_app(f"sqlite:///{path}")
    register_openapi(app)
    return app


APPS = {"testapp": _testapp, "microblog": _microblog, "reflected": _reflected}


@pytest.fixture(params=list(APPS))
def any_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    app = APPS[request.param](tmp_path)
    yield app
    state_of(app).engine.dispose()


@pytest.fixture
def test_app(tmp_path: Path) -> Iterator[Flask]:
    app = _testapp(tmp_path)
    yield app
    state_of(app).engine.dispose()


@pytest.fixture
def doc(test_app: Flask) -> dict[str, Any]:
    return openapi_document(test_app)


@pytest.fixture
def microblog_doc(tmp_path: Path) -> dict[str, Any]:
    return openapi_document(_microblog(tmp_path))


# -- helpers -------------------------------------------------------------------------------


def served_operations(app: Flask) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route tablerest registered; QUERY and FETCH count as
    the POST {list}/query that the document shows instead."""
    found = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("tablerest.") or rule.endpoint in DOC_ENDPOINTS:
            continue
        path = ARGUMENT.sub(r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            if method in ("QUERY", "FETCH"):
                found.add(("post", f"{path}/query"))
            else:
                found.add((method.lower(), path))
    return found


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items()
            for method in item if method != "parameters"}


def resolve(document: dict[str, Any], node: dict[str, Any]) -> Any:
    while "$ref" in node:
        found: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


def parameters(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    item = document["paths"][path]
    listed = item.get("parameters", []) + item[method].get("parameters", [])
    return {found["name"]: found for found in (resolve(document, each) for each in listed)}


def _absolute(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {key: ("urn:openapi" + value if key == "$ref" and value.startswith("#") else
                      _absolute(value)) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_absolute(item) for item in schema]
    return schema


def check_response(document: dict[str, Any], method: str, path: str,
                   response: TestResponse) -> None:
    """``response`` has a documented status, content type and headers, and fits its schema."""
    operation = document["paths"][path][method]
    assert str(response.status_code) in operation["responses"], (
        f"{method.upper()} {path} answered {response.status_code}, which is not documented")
    spec = resolve(document, operation["responses"][str(response.status_code)])
    for name, header in spec.get("headers", {}).items():
        if header.get("required"):
            assert name in response.headers
    if not response.data:
        assert "content" not in spec
        return
    assert response.mimetype in spec["content"], (response.mimetype, list(spec["content"]))
    schema = spec["content"][response.mimetype]["schema"]
    registry: Registry[Any] = Registry().with_resource(
        "urn:openapi", DRAFT202012.create_resource(document))
    validator = Draft202012Validator(_absolute(schema), registry=registry,
                                     format_checker=FormatChecker())
    errors = [f"{list(error.absolute_path)}: {error.message}"
              for error in validator.iter_errors(response.get_json())]
    assert not errors, errors


# -- the document is valid and exact -------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(any_app: Flask) -> None:
    document = openapi_document(any_app)
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_is_documented_and_nothing_else(any_app: Flask) -> None:
    assert documented_operations(openapi_document(any_app)) == served_operations(any_app)


def test_only_the_docs_own_routes_are_left_out(any_app: Flask) -> None:
    left_out = {rule.endpoint for rule in any_app.url_map.iter_rules()
                if rule.endpoint.startswith("tablerest.")} - {
        rule.endpoint for rule in any_app.url_map.iter_rules()
        if (ARGUMENT.sub(r"{\1}", rule.rule) in openapi_document(any_app)["paths"])}
    assert left_out == DOC_ENDPOINTS


def test_query_and_fetch_are_documented_as_post_query(doc: dict[str, Any]) -> None:
    assert set(doc["paths"]["/users"]) == {"get", "post"}
    assert set(doc["paths"]["/users/query"]) == {"post"}
    assert set(doc["paths"]["/posts/{key}/tags/query"]) == {"post", "parameters"}
    body = resolve(doc, doc["paths"]["/users/query"]["post"]["requestBody"]["content"]
                   ["application/json"]["schema"])
    assert set(body["properties"]) == {"where", "order_by", "orderby", "limit", "offset",
                                       "cursor", "fields", "include", "count"}
    where = resolve(doc, body["properties"]["where"]["anyOf"][0])
    assert {"name", "age", "posts.title", "and", "or", "not"} <= set(where["properties"])
    assert "password" not in where["properties"]


def test_the_document_is_served_at_openapi_json(test_app: Flask) -> None:
    response = test_app.test_client().get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == openapi_document(test_app)


def test_registering_twice_changes_nothing(test_app: Flask) -> None:
    before = [(rule.rule, rule.endpoint) for rule in test_app.url_map.iter_rules()]
    register_openapi(test_app)
    assert [(rule.rule, rule.endpoint) for rule in test_app.url_map.iter_rules()] == before


def test_resources_added_after_registering_appear(tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'late.db'}"
    api = TableRest(app)
    register_openapi(app)
    assert "/tags" not in openapi_document(app)["paths"]
    api.add(Tag)
    assert {"/tags", "/tags/{key}", "/tags/query"} <= set(openapi_document(app)["paths"])
    assert documented_operations(openapi_document(app)) == served_operations(app)


# -- parameters ------------------------------------------------------------------------------


def test_list_parameters_name_every_field_and_operator(doc: dict[str, Any]) -> None:
    found = parameters(doc, "/users", "get")
    assert found["name"]["schema"] == {"type": "string"}
    assert found["name__like"]["schema"] == {"type": "string"}
    # The test app is on SQLite, whose integers are 64-bit whatever the declared type.
    assert found["age__gte"]["schema"] == {"type": "integer", "minimum": -(2**63),
                                           "maximum": 2**63 - 1}
    assert found["age__isnull"]["schema"] == {"type": "boolean"}
    assert found["created_at__lt"]["schema"] == {"type": "string", "format": "date-time"}
    assert found["age__in"]["schema"]["type"] == "array"
    assert (found["age__in"]["style"], found["age__in"]["explode"]) == ("form", False)
    assert "age__like" not in found  # like and ilike are for text only
    assert "posts__title__ilike" in found  # one level through a relation
    assert not [name for name in found if name.startswith("password")]
    assert "-created_at" in resolve(doc, found["sort"]["schema"]["items"])["enum"]
    assert "password" not in resolve(doc, found["fields"]["schema"]["items"])["enum"]
    assert resolve(doc, found["include"]["schema"]["items"])["enum"] == ["posts"]
    assert found["limit"]["schema"]["default"] == 20
    assert "50" in found["limit"]["description"]  # Users' max_limit
    assert {"offset", "cursor", "count"} <= set(found)


def test_decimal_and_date_filters_are_typed(doc: dict[str, Any]) -> None:
    posts = parameters(doc, "/posts", "get")
    assert posts["rating__gt"]["schema"] == {"type": "number"}
    assert posts["published"]["schema"] == {"type": "boolean"}
    documents = parameters(doc, "/documents", "get")
    assert documents["published_on__lte"]["schema"] == {"type": "string", "format": "date"}
    assert documents["id__in"]["schema"]["items"] == {"type": "string", "format": "uuid"}


@pytest.mark.parametrize(("path", "name", "expected"), [
    ("/users/{key}", "key", {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}),
    ("/tags/{key}", "key", {"type": "string", "pattern": "^[^/]+$"}),
    ("/documents/{key}", "key", {"type": "string", "format": "uuid"}),
    ("/posts/{key}/tags/{other}", "other", {"type": "string", "pattern": "^[^/]+$"}),
], ids=["integer", "string", "uuid", "link-target"])
def test_keys_are_typed_path_parameters(doc: dict[str, Any], path: str, name: str,
                                        expected: dict[str, Any]) -> None:
    found = parameters(doc, path, next(m for m in doc["paths"][path] if m != "parameters"))
    assert found[name]["in"] == "path"
    assert found[name]["required"] is True
    assert found[name]["schema"] == expected


def test_a_composite_key_is_a_comma_separated_string(doc: dict[str, Any]) -> None:
    key = parameters(doc, "/country_names/{key}", "get")["key"]
    assert key["schema"]["type"] == "string"
    assert re.fullmatch(key["schema"]["pattern"], "fr,en")
    assert not re.fullmatch(key["schema"]["pattern"], "fr")
    assert "country_code,lang" in key["schema"]["description"]


def test_item_routes_take_etag_headers(doc: dict[str, Any]) -> None:
    assert "If-None-Match" in parameters(doc, "/users/{key}", "get")
    for method in ("patch", "put", "delete"):
        assert "If-Match" in parameters(doc, "/users/{key}", method)


# -- bodies and responses ------------------------------------------------------------------


def test_request_bodies_come_from_the_validators(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    create = schemas["users.create"]
    assert create["required"] == ["name", "email", "password"]
    assert create["additionalProperties"] is False
    assert create["properties"]["email"] == {"type": "string", "format": "email"}
    assert "required" not in schemas["users.update"]
    assert schemas["users.replace"]["required"] == ["name", "email", "password"]
    assert "id" not in create["properties"]
    # The JSON Schema override of events is the body, as given.
    assert schemas["events.create"]["properties"]["name"] == {"type": "string", "minLength": 3}
    # A child created under its parent: the URL sets the foreign key.
    assert "user_id" not in schemas["users.posts.create"]["properties"]


@pytest.mark.parametrize(("path", "body", "item"), [
    ("/users", "users.create", "users"),
    ("/users/{key}/posts", "users.posts.create", "posts"),
], ids=["list", "relation-list"])
def test_a_list_post_takes_an_object_or_an_array(doc: dict[str, Any], path: str, body: str,
                                                 item: str) -> None:
    operation = doc["paths"][path]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{body}.one_or_many"}
    one, many = resolve(doc, schema)["oneOf"]
    assert one == {"$ref": f"#/components/schemas/{body}"}
    assert many == {"type": "array", "items": one, "minItems": 1}
    created = operation["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{item}.one_or_many"}
    assert "required" not in created["headers"]["Location"]  # an array has no Location


def test_responses_never_show_hidden_fields(doc: dict[str, Any]) -> None:
    user = doc["components"]["schemas"]["users"]
    assert set(user["properties"]) == {"id", "name", "email", "age", "created_at",
                                       "updated_at"}
    assert user["additionalProperties"] is False
    assert "password" not in doc["components"]["schemas"]["users.row"]["properties"]


def test_the_list_envelope(doc: dict[str, Any]) -> None:
    envelope = doc["components"]["schemas"]["users.list"]
    assert set(envelope["required"]) == {"items", "count", "count_kind", "limit", "offset",
                                         "cursor", "next"}
    content = doc["paths"]["/users"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/csv", "application/x-ndjson"}


@pytest.mark.parametrize(("path", "method", "statuses"), [
    ("/users", "get", {"200", "400", "406", "500", "503"}),
    ("/users", "post", {"201", "400", "406", "409", "413", "415", "422", "500", "503"}),
    # Items and writes refuse query parameters: 400 on every one of them.
    ("/users/{key}", "get", {"200", "304", "400", "404", "406", "500", "503"}),
    ("/users/{key}", "patch", {"200", "400", "404", "406", "409", "412", "413", "415", "422",
                               "500", "503"}),
    ("/users/{key}", "delete", {"204", "400", "404", "406", "409", "412", "500", "503"}),
    ("/posts/{key}/tags/{other}", "put", {"204", "400", "404", "406", "409", "422", "500",
                                          "503"}),
    ("/users/{key}/posts", "post", {"201", "400", "404", "406", "409", "413", "415", "422",
                                    "500", "503"}),
    ("/users/query", "post", {"200", "400", "406", "413", "415", "500", "503"}),
    ("/", "get", {"200", "406", "500"}),  # the index reads no database
], ids=lambda value: value if isinstance(value, str) else "")
def test_each_operation_lists_its_errors(doc: dict[str, Any], path: str, method: str,
                                         statuses: set[str]) -> None:
    responses = doc["paths"][path][method]["responses"]
    assert set(responses) == statuses
    for status in statuses - {"200", "201", "204", "304"}:
        problem = resolve(doc, responses[status])["content"][PROBLEM]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}


def test_tokens_bring_the_bearer_scheme_and_401_403(microblog_doc: dict[str, Any],
                                                    doc: dict[str, Any]) -> None:
    schemes = microblog_doc["components"]["securitySchemes"]
    assert schemes == {"bearerAuth": {"type": "http", "scheme": "bearer",
                                      "description": schemes["bearerAuth"]["description"]}}
    # A token is optional everywhere (the policies answer 401 or 403 where one is needed),
    # said once for the whole document, so generated clients take a client with or without.
    assert microblog_doc["security"] == [{}, {"bearerAuth": []}]
    patch = microblog_doc["paths"]["/users/{key}"]["patch"]
    assert "security" not in patch
    assert {"401", "403"} <= set(patch["responses"])
    assert "401" in microblog_doc["paths"]["/users"]["get"]["responses"]
    token = microblog_doc["paths"]["/auth/token"]["post"]
    assert token["security"] == []
    assert set(token["responses"]) == {"200", "400", "401", "406", "413", "415", "422", "429",
                                       "500", "503"}
    assert "/users/{key}/timeline" in microblog_doc["paths"]
    assert "securitySchemes" not in doc["components"]
    assert doc["security"] == []
    assert "401" not in doc["paths"]["/users/{key}"]["patch"]["responses"]


# -- what client generators need ----------------------------------------------------------


def nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every object in a document, depth first."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from nodes(item)
    elif isinstance(value, list):
        for item in value:
            yield from nodes(item)


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield method, path, operation


def snake(name: str) -> str:
    """A name as generators make a method or module of it (``list_PlaylistTrack`` ->
    ``list_playlist_track``)."""
    return re.sub(r"[^a-z0-9]+", "_", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower())


def test_literals_are_enums_not_const(any_app: Flask) -> None:
    """openapi-python-client reads no ``const`` with an object value, and few tools read
    ``const`` at all."""
    assert not [node for node in nodes(openapi_document(any_app)) if "const" in node]


def test_every_body_is_a_named_schema(any_app: Flask) -> None:
    """Generators name a type after its component; an inline body gets a name made of its
    operation's, one per operation. Streamed CSV and NDJSON are plain strings."""
    document = openapi_document(any_app)
    inline = []
    for method, path, operation in operations(document):
        bodies = [operation.get("requestBody", {})] + [
            resolve(document, response) for response in operation["responses"].values()]
        for body in bodies:
            for media, content in body.get("content", {}).items():
                if media not in ("text/csv", "application/x-ndjson") and \
                        set(content["schema"]) != {"$ref"}:
                    inline.append((method, path, media))
    assert not inline


def test_operation_ids_read_as_method_names(any_app: Flask) -> None:
    document = openapi_document(any_app)
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    verbs = "list|create|query|read|update|replace|delete|link|unlink"
    assert all(re.fullmatch(rf"({verbs})(_[A-Za-z0-9]+)+", each) for each in ids), ids
    assert len({snake(each) for each in ids}) == len(ids)  # unique once snake-cased


def test_the_microblogs_operations(microblog_doc: dict[str, Any]) -> None:
    found = {(method, path): (operation["operationId"], operation["tags"])
             for method, path, operation in operations(microblog_doc)}
    assert found == {
        ("get", "/"): ("list_resources", ["index"]),
        ("post", "/auth/token"): ("create_token", ["auth"]),
        ("get", "/messages"): ("list_messages", ["messages"]),
        ("post", "/messages"): ("create_messages", ["messages"]),
        ("post", "/messages/query"): ("query_messages", ["messages"]),
        ("get", "/messages/{key}"): ("read_messages", ["messages"]),
        ("patch", "/messages/{key}"): ("update_messages", ["messages"]),
        ("put", "/messages/{key}"): ("replace_messages", ["messages"]),
        ("delete", "/messages/{key}"): ("delete_messages", ["messages"]),
        ("get", "/users"): ("list_users", ["users"]),
        ("post", "/users"): ("create_users", ["users"]),
        ("post", "/users/query"): ("query_users", ["users"]),
        ("get", "/users/{key}"): ("read_users", ["users"]),
        ("patch", "/users/{key}"): ("update_users", ["users"]),
        ("put", "/users/{key}"): ("replace_users", ["users"]),
        ("delete", "/users/{key}"): ("delete_users", ["users"]),
        ("get", "/users/{key}/messages"): ("list_users_messages", ["users"]),
        ("post", "/users/{key}/messages"): ("create_users_messages", ["users"]),
        ("post", "/users/{key}/messages/query"): ("query_users_messages", ["users"]),
        ("get", "/users/{key}/following"): ("list_users_following", ["users"]),
        ("post", "/users/{key}/following/query"): ("query_users_following", ["users"]),
        ("put", "/users/{key}/following/{other}"): ("link_users_following", ["users"]),
        ("delete", "/users/{key}/following/{other}"): ("unlink_users_following", ["users"]),
        ("get", "/users/{key}/followers"): ("list_users_followers", ["users"]),
        ("post", "/users/{key}/followers/query"): ("query_users_followers", ["users"]),
        ("put", "/users/{key}/followers/{other}"): ("link_users_followers", ["users"]),
        ("delete", "/users/{key}/followers/{other}"): ("unlink_users_followers", ["users"]),
        # A list of your own is named after its URL, and tagged with its first resource.
        ("get", "/users/{key}/timeline"): ("list_users_timeline", ["users"]),
        ("post", "/users/{key}/timeline/query"): ("query_users_timeline", ["users"]),
    }
    assert [(tag["name"], bool(tag["description"])) for tag in microblog_doc["tags"]] == [
        ("users", True), ("messages", True), ("auth", True), ("index", True)]


def test_every_component_is_used(any_app: Flask) -> None:
    """Shared parts (the token's schemas, the problem responses) appear only where an
    operation refers to them, as linters ask."""
    document = openapi_document(any_app)
    used = {node["$ref"] for node in nodes(document) if "$ref" in node}
    defined = {f"#/components/{section}/{name}" for section, members in
               document["components"].items() if section != "securitySchemes"
               for name in members}
    assert defined == used


def test_names_stay_apart_once_generators_change_their_case(tmp_path: Path) -> None:
    """``a b`` and ``a_b`` both make ``A_b`` components; ``Playlist``'s relation ``Track``
    and the table ``PlaylistTrack`` both make ``list_playlist_track``. The second of each
    gets a number, and a table's own operations keep the plain name."""
    path = tmp_path / "clash.db"
    with sqlite3.connect(path) as connection:
        connection.executescript("""
            CREATE TABLE "a b" ("id" INTEGER PRIMARY KEY);
            CREATE TABLE "a_b" ("id" INTEGER PRIMARY KEY);
            CREATE TABLE "Playlist" ("PlaylistId" INTEGER PRIMARY KEY);
            CREATE TABLE "Track" ("TrackId" INTEGER PRIMARY KEY);
            CREATE TABLE "PlaylistTrack" (
                "PlaylistId" INTEGER NOT NULL REFERENCES "Playlist" ("PlaylistId"),
                "TrackId" INTEGER NOT NULL REFERENCES "Track" ("TrackId"),
                PRIMARY KEY ("PlaylistId", "TrackId"));
        """)
    connection.close()
    app = reflect_app(f"sqlite:///{path}")
    document = openapi_document(app)
    state_of(app).engine.dispose()
    folded = [re.sub("[^a-z0-9]", "", name.lower()) for name in document["components"]
              ["schemas"]]
    assert len(set(folded)) == len(folded)
    assert {"a_b", "a_b_2"} <= set(document["components"]["schemas"])
    ids = {path: operation["operationId"] for method, path, operation in
           operations(document) if method == "get"}
    assert ids["/PlaylistTrack"] == "list_PlaylistTrack"
    assert ids["/Playlist/{key}/Track"] == "list_Playlist_Track_2"
    assert ids["/a b"] == "list_a_b"
    assert ids["/a_b"] == "list_a_b_2"


def test_the_document_names_its_server_security_and_head(test_app: Flask,
                                                         doc: dict[str, Any]) -> None:
    assert doc["servers"] == [{"url": "/", "description": "The server that serves this "
                                                          "document."}]
    assert doc["security"] == []  # no tokens in the test app
    assert "HEAD" in doc["info"]["description"]
    assert not [path for path, item in doc["paths"].items() if "head" in item]
    # Mounted under a prefix, the served document's server is the prefix.
    mounted = test_app.test_client().get("/openapi.json",
                                         environ_overrides={"SCRIPT_NAME": "/api"})
    assert mounted.get_json()["servers"][0]["url"] == "/api"


def test_body_query_pages_are_described(doc: dict[str, Any]) -> None:
    """The ``next`` of a body query carries the query as a ``q.`` cursor token."""
    listed = parameters(doc, "/users", "get")["cursor"]["description"]
    queried = parameters(doc, "/users/query", "post")["cursor"]["description"]
    envelope = doc["components"]["schemas"]["users.list"]["properties"]["next"]
    assert all("`q.`" in text for text in (listed, queried, envelope["description"]))
    where = doc["components"]["schemas"]["users.query"]["properties"]["where"]
    assert where == {"anyOf": [{"$ref": "#/components/schemas/users.where"},
                               {"type": "null"}]}


# -- real responses fit the document -------------------------------------------------------


def test_real_responses_fit_their_schemas(test_app: Flask, doc: dict[str, Any]) -> None:
    client: FlaskClient = test_app.test_client()
    sent: list[tuple[str, str, TestResponse]] = []

    def call(method: str, path: str, url: str, **kwargs: Any) -> TestResponse:
        response = client.open(url, method=method.upper(), **kwargs)
        sent.append((method, path, response))
        return response

    user = call("post", "/users", "/users", json={
        "name": "jane", "email": "jane@example.com", "password": "a-long-secret"}).get_json()
    call("post", "/users", "/users", json={
        "name": "jane", "email": "jane@example.com", "password": "a-long-secret"})  # 409
    call("post", "/users", "/users", json=[{"name": "x"}])  # 422
    call("post", "/users", "/users", data="{", content_type="application/json")  # 400
    call("post", "/users", "/users", data="x", content_type="text/plain")  # 415
    call("post", "/users/{key}/posts", f"/users/{user['id']}/posts",
         json={"title": "Hello", "rating": "4.5", "published": True})
    call("post", "/tags", "/tags", json=[{"name": "news"}, {"name": "misc", "label": "M"}])
    call("put", "/posts/{key}/tags/{other}", "/posts/1/tags/news")
    call("get", "/posts", "/posts?include=author,tags&sort=-rating")
    call("get", "/users", "/users?include=posts.tags,posts.author.posts")  # nested includes
    call("get", "/posts", "/posts?rating__gt=1.5&fields=id,rating&limit=1&count=false")
    call("get", "/posts", "/posts?rating__gt=abc")  # 400
    call("post", "/posts/query", "/posts/query",
         json={"where": {"or": [{"author.name": "jane"}, {"rating": {"gte": 4}}]},
               "order_by": ["-id"], "include": ["author"]})
    call("get", "/posts", "/posts", headers={"Accept": "text/csv"})
    call("get", "/posts", "/posts", headers={"Accept": "image/png"})  # 406
    document = call("post", "/documents", "/documents",
                    json={"title": "Spec", "published_on": "2024-02-29"}).get_json()
    call("get", "/documents/{key}", f"/documents/{document['id']}")
    call("post", "/countries", "/countries", json={"code": "fr", "name": "France"})
    call("post", "/country_names", "/country_names",
         json={"country_code": "fr", "lang": "en", "name": "France"})
    read = call("get", "/country_names/{key}", "/country_names/fr,en")
    call("get", "/country_names/{key}", "/country_names/fr,en",
         headers={"If-None-Match": read.headers["ETag"]})  # 304
    call("patch", "/country_names/{key}", "/country_names/fr,en", json={"name": "Frankreich"},
         headers={"If-Match": '"stale"'})  # 412
    call("delete", "/countries/{key}", "/countries/fr")  # 409: still named
    call("post", "/events", "/events", json={
        "name": "Launch", "day": "2024-01-02",
        "starts_at": dt.datetime(2024, 1, 2, 9, tzinfo=dt.UTC).isoformat()})
    call("put", "/events/{key}", "/events/1", json={"name": "x", "day": "2024-01-02"})  # 422
    call("get", "/users/{key}", "/users/999")  # 404
    call("delete", "/users/{key}", f"/users/{user['id']}")
    call("get", "/", "/")
    statuses = {response.status_code for _, _, response in sent}
    assert {200, 201, 204, 304, 400, 404, 406, 409, 412, 415, 422} <= statuses
    for method, path, response in sent:
        if response.mimetype in ("application/json", PROBLEM) or not response.data:
            check_response(doc, method, path, response)


# -- the docs page -----------------------------------------------------------------------------


def test_the_docs_page_uses_local_assets_only(test_app: Flask) -> None:
    client = test_app.test_client()
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http://" not in html
    assert "https://" not in html
    assert '"/openapi.json"' in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) == 4  # favicon, style sheet, Swagger UI, the script that starts it
    for url in assets:
        with client.get(url.replace("&amp;", "&")) as asset:
            assert asset.status_code == 200, url
            assert asset.mimetype in ("text/css", "text/javascript", "application/javascript",
                                      "image/png")
            assert b"https://cdn" not in asset.data


@pytest.mark.parametrize("name", ["LICENSE", "index.css", "..%2Fpyproject.toml", "VERSION"])
def test_the_docs_serve_no_other_file(test_app: Flask, name: str) -> None:
    response = test_app.test_client().get(f"/docs/static/{name}")
    assert response.status_code == 404
    assert response.mimetype == PROBLEM


def test_the_document_leaves_the_docs_routes_out(doc: dict[str, Any]) -> None:
    assert not [path for path in doc["paths"] if path.startswith(("/docs", "/openapi"))]


def test_a_reflected_view_is_read_only(tmp_path: Path) -> None:
    app = _reflected(tmp_path)
    document = openapi_document(app)
    assert set(document["paths"]["/artist names"]) == {"get"}
    assert "/artist names/{key}" not in document["paths"]
    assert set(document["paths"]["/log"]) == {"get"}  # no key: no item routes, no writes
    credit = parameters(document, "/Credit/{key}", "get")["key"]
    assert "AlbumId,Role" in credit["schema"]["description"]
    names = set(document["components"]["schemas"])
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in names)
    state_of(app).engine.dispose()


def test_the_engine_is_not_needed_to_build_the_document(tmp_path: Path) -> None:
    engine_calls: list[str] = []
    app = _microblog(tmp_path)
    sa.event.listen(state_of(app).engine, "connect", lambda *_: engine_calls.append("connect"))
    openapi_document(app)
    assert engine_calls == []
