"""Schemathesis against the microblog: no request the document allows gets a 500, and no
response contradicts the document (its status codes, content types, headers and schemas).

One test per documented operation, each with a bounded number of generated requests (valid
ones, and invalid ones the server must refuse with a documented error), derandomized so the
suite is repeatable. On SQLite and PostgreSQL: the document is the same, but each database
has its own limits (a bigint OFFSET, text without NUL) that a request may reach. Requests
carry a bearer token of a seeded user, so writes reach the policies.

Random requests seldom reach some answers, so explicit requests do (``SHAPED``): lists with
``include`` and ``fields``, streamed CSV and NDJSON (whose rows must be the list's rows),
a query token's page, 304 and 412, and a problem body of each kind.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from microblog.app import create_app
from microblog.models import Message, User, follows
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.deserialization import DeserializationContext
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import SECRET
from tablerest import PasswordHash, hash_password
from tablerest.auth import issue_token
from tablerest.extension import state_of
from tablerest.migrations import Migrations, upgrade
from tablerest.openapi import openapi_document, register_openapi

STREAMED = ("text/csv", "application/x-ndjson")


@schemathesis.deserializer(*STREAMED)
def _streamed_text(_ctx: DeserializationContext, response: Response) -> str:
    """A stream is documented as a string: validate it as one (else it goes unchecked)."""
    return response.text


def streamed_rows_fit(_ctx: Any, response: Response, case: schemathesis.Case) -> None:
    """Each row of a streamed list fits the row schema of the list's JSON page: every NDJSON
    line validates, and the CSV header names only fields of it."""
    media = (response.headers.get("content-type") or [""])[0].partition(";")[0]
    if response.status_code != 200 or media not in STREAMED:
        return
    document = case.operation.schema.raw_schema
    page = case.operation.definition.raw["responses"]["200"]["content"]["application/json"]
    envelope = document["components"]["schemas"][page["schema"]["$ref"].rpartition("/")[2]]
    row = {"$ref": "urn:openapi" + envelope["properties"]["items"]["items"]["$ref"]}
    registry: Registry[Any] = Registry().with_resource(
        "urn:openapi", DRAFT202012.create_resource(document))
    text = response.text
    if media == "application/x-ndjson":
        validator = Draft202012Validator(row, registry=registry)
        for line in filter(None, text.split("\n")):
            errors = [error.message for error in validator.iter_errors(json.loads(line))]
            assert not errors, (line, errors)
        return
    header, *lines = csv.reader(io.StringIO(text))
    fields = registry.resolver().lookup(row["$ref"]).contents["properties"]
    assert set(header) <= set(fields), header
    assert all(len(line) == len(header) for line in lines)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance, streamed_rows_fit]
#: The environment wins over app.config: a developer's settings stay out of these apps.
ENVIRONMENT = ("DATABASE_URL", "FLASK_CONFIG_PREFIXES", "TABLEREST_SECRET_KEY")
PASSWORD = "schemathesis-password"
MAX_EXAMPLES = 30
SEEDED_KEYS = (1, 2, 3)


@functools.cache
def password_hash() -> PasswordHash:
    return hash_password(PASSWORD)


def seed(engine: sa.Engine) -> None:
    """Three users, a message each, and a circle of follows: 1 -> 2 -> 3 -> 1."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        for name in ("twittor", "john", "jane"):
            user_id = connection.execute(
                sa.insert(User.__table__).values(name=name, email=f"{name}@example.com",
                                                 password=password_hash(), created_at=now,
                                                 updated_at=now)
                .returning(User.__table__.c.id)).scalar_one()
            connection.execute(sa.insert(Message.__table__).values(
                content=f"{name}'s message", user_id=user_id, created_at=now, updated_at=now))
        for follower, followed in ((1, 2), (2, 3), (3, 1)):
            connection.execute(sa.insert(follows).values(
                follower_id=follower, followed_id=followed, created_at=now, updated_at=now))


@pytest.fixture
def microblog_app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    app = create_app({"DATABASE_URL": db_url, "TABLEREST_SECRET_KEY": SECRET})
    register_openapi(app)
    engine = state_of(app).engine
    upgrade(Migrations.for_app(app))
    seed(engine)
    yield app
    engine.dispose()


@pytest.fixture
def token(microblog_app: Flask) -> str:
    """A bearer token of the first seeded user."""
    access: str = issue_token(state_of(microblog_app), 1)["access_token"]
    return access


def documented_operations() -> list[str]:
    """``METHOD /path`` of every operation, from the document of an app with no database."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name in ENVIRONMENT:
            monkeypatch.delenv(name, raising=False)
        app = create_app({"DATABASE_URL": "sqlite://", "TABLEREST_SECRET_KEY": SECRET})
    register_openapi(app)
    paths = openapi_document(app)["paths"]
    return [f"{method.upper()} {path}" for path, item in paths.items()
            for method in item if method != "parameters"]


def cases_for(operation: schemathesis.APIOperation, label: str) -> st.SearchStrategy[Any]:
    """Valid and invalid requests; and, since random keys are mostly 404s, valid requests
    about the seeded rows (keys 1 to 3) too."""
    strategies = [operation.as_strategy(GenerationMode.POSITIVE),
                  operation.as_strategy(GenerationMode.NEGATIVE)]
    names = re.findall(r"{(\w+)}", label)
    if names:
        seeded = st.fixed_dictionaries({name: st.sampled_from(SEEDED_KEYS) for name in names})
        strategies.append(seeded.flatmap(
            lambda values: operation.as_strategy(path_parameters=values)))
    return st.one_of(strategies)


@pytest.mark.parametrize("label", documented_operations())
def test_microblog_conforms_to_its_document(microblog_app: Flask, token: str,
                                            label: str) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", microblog_app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label

    @hypothesis.given(case=cases_for(operation, label))
    @hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                         database=None, suppress_health_check=list(HealthCheck))
    def conforms(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    conforms()


NEW_USER = {"name": "twittor", "email": "twittor@example.com", "password": PASSWORD}
#: Requests the fuzzer seldom makes: (operation, the request, the status it must get). The
#: caller is user 1 (twittor) unless the request is "anonymous"; ``{etag}`` is user 1's ETag
#: and ``{query_token}`` the cursor of a body query's next link.
SHAPED: list[Any] = [
    pytest.param("GET /users", {"query": {"include": ["messages", "following", "followers"],
                                          "fields": ["id", "name"], "sort": ["-name"]}}, 200,
                 id="list-include-fields"),
    pytest.param("GET /users/{key}/followers", {"path_parameters": {"key": 1}, "query": {
        "include": ["messages"], "fields": ["id"]}}, 200, id="relation-include-fields"),
    pytest.param("GET /messages", {"query": {"include": ["author"], "fields": ["id", "content"],
                                             "limit": 1}}, 200, id="to-one-include"),
    pytest.param("GET /users/{key}/timeline", {"path_parameters": {"key": 1},
                                               "query": {"include": ["author"]}}, 200,
                 id="own-list-include"),
    pytest.param("POST /messages/query", {"body": {"include": ["author"], "limit": 1,
                                                   "fields": ["id", "content"]}}, 200,
                 id="body-query-include-fields"),
    pytest.param("GET /messages", {"query": {"cursor": "{query_token}"}}, 200,
                 id="query-token-page"),
    pytest.param("GET /messages", {"headers": {"Accept": "text/csv"}}, 200, id="csv"),
    pytest.param("GET /users", {"headers": {"Accept": "application/x-ndjson"},
                                "query": {"fields": ["id", "name"]}}, 200, id="ndjson-fields"),
    pytest.param("GET /users/{key}/messages", {"path_parameters": {"key": 1}, "query": {
        "limit": 1}, "headers": {"Accept": "text/csv"}}, 200, id="relation-csv"),
    pytest.param("POST /users/query", {"headers": {"Accept": "application/x-ndjson"},
                                       "body": {"where": {"name": "john"}}}, 200,
                 id="body-query-ndjson"),
    pytest.param("POST /users/{key}/messages", {"path_parameters": {"key": 1}, "body": [
        {"content": "one"}, {"content": "two"}]}, 201, id="relation-create-array"),
    pytest.param("GET /users/{key}", {"path_parameters": {"key": 1},
                                      "headers": {"If-None-Match": "{etag}"}}, 304,
                 id="not-modified"),
    pytest.param("PATCH /users/{key}", {"path_parameters": {"key": 1}, "body": {
        "name": "twittor-again"}, "headers": {"If-Match": '"stale"'}}, 412, id="stale-patch"),
    pytest.param("DELETE /messages/{key}", {"path_parameters": {"key": 1},
                                            "headers": {"If-Match": '"stale"'}}, 412,
                 id="stale-delete"),
    pytest.param("PUT /users/{key}", {"path_parameters": {"key": 1}, "body": NEW_USER,
                                      "headers": {"If-None-Match": "*"}}, 412,
                 id="put-if-none-match"),
    pytest.param("GET /users/{key}", {"path_parameters": {"key": 999999}}, 404, id="404"),
    pytest.param("GET /users/{key}", {"path_parameters": {"key": 1},
                                      "query": {"fields": "id"}}, 400,
                 id="item-query-parameter"),
    pytest.param("GET /users", {"query": {"cursor": "not-a-cursor"}}, 400, id="bad-cursor"),
    pytest.param("POST /users/query", {"body": {"where": {"nope": 1}}}, 400,
                 id="bad-query-body"),
    pytest.param("POST /messages", {"body": {"content": "Who am I?"}, "anonymous": True}, 401,
                 id="401"),
    pytest.param("POST /auth/token", {"body": {"name": "twittor",
                                               "password": "not-the-password"},
                                      "anonymous": True}, 401, id="bad-login"),
    pytest.param("DELETE /messages/{key}", {"path_parameters": {"key": 2}}, 403, id="403"),
    pytest.param("GET /users", {"headers": {"Accept": "image/png"}}, 406, id="406"),
    pytest.param("POST /users", {"body": NEW_USER}, 409, id="409"),
    pytest.param("PUT /users/{key}/following/{other}", {"path_parameters": {
        "key": 1, "other": 1}}, 422, id="follow-yourself"),
    pytest.param("POST /users", {"body": [{"name": "x"}]}, 422, id="422"),
]


@pytest.mark.parametrize(("label", "asked", "status"), SHAPED)
def test_every_shape_of_response_conforms(microblog_app: Flask, token: str, label: str,
                                          asked: dict[str, Any], status: int) -> None:
    client = microblog_app.test_client()
    found = {"{etag}": client.get("/users/1").headers["ETag"],
             "{query_token}": parse_qs(urlsplit(client.post(
                 "/messages/query", json={"limit": 1}).get_json()["next"]).query)["cursor"][0]}
    values = json.loads(json.dumps(asked), object_hook=lambda node: {
        key: found.get(value, value) if isinstance(value, str) else value
        for key, value in node.items()})
    headers = None if values.pop("anonymous", False) else {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi("/openapi.json", microblog_app)
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label

    response = operation.Case(**values).call_and_validate(headers=headers, checks=CHECKS)

    assert response.status_code == status, response.text
    media = response.headers.get("content-type", [""])[0]
    accept = values.get("headers", {}).get("Accept")
    if status == 200 and accept in STREAMED:
        assert media.startswith(accept)
