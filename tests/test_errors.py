"""Every error is RFC 9457 problem+json with the right status, headers and field errors; a 500
shows no traceback, is logged with a request id, and leaves the database as it was."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from conftest import rows
from factories import add_user, insert, serving
from tablerest import RequestContext, Resource
from tablerest.extension import state_of
from testapp import Post, Tag

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.json
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


Request = Callable[[FlaskClient], Any]


@pytest.mark.parametrize(("send", "status"), [
    (lambda c: c.get("/posts?limit=abc"), 400),
    (lambda c: c.post("/tags", data="{oops", content_type="application/json"), 400),
    (lambda c: c.post("/tags", data=b'{"name": "\xff"}', content_type="application/json"), 400),
    (lambda c: c.post("/tags", data="[" * 100_000, content_type="application/json"), 400),
    (lambda c: c.get("/nothing-here"), 404),
    (lambda c: c.get("/tags/nope"), 404),
    (lambda c: c.get("/tags/python/nothing"), 404),
    (lambda c: c.delete("/tags"), 405),
    (lambda c: c.get("/tags", headers={"Accept": "image/png"}), 406),
    (lambda c: c.get("/tags/python", headers={"Accept": "image/png"}), 406),
    (lambda c: c.post("/tags", json={"name": "python"}), 409),
    (lambda c: c.patch("/tags/python", json={"label": "x"}, headers={"If-Match": '"stale"'}),
     412),
    (lambda c: c.post("/tags", data="x" * (1024 * 1024 + 1), content_type="application/json"),
     413),
    (lambda c: c.post("/tags", data="name=python", content_type="text/plain"), 415),
    (lambda c: c.post("/tags", data="name=x", content_type="application/x-www-form-urlencoded"),
     415),
    (lambda c: c.post("/tags", json={"nope": 1}), 422),
], ids=["bad-query", "malformed-json", "invalid-utf8", "deeply-nested", "unknown-route",
        "missing-item", "unknown-subroute", "method", "not-acceptable-list",
        "not-acceptable-item", "conflict", "precondition", "too-large", "text-body",
        "form-body", "validation"])
def test_errors_are_problem_json(client: FlaskClient, engine: sa.Engine, send: Request,
                                 status: int) -> None:
    insert(engine, Tag, {"name": "python", "label": "snake"})
    assert_problem(send(client), status)
    assert rows(engine, "SELECT name, label FROM tags") == [{"name": "python", "label": "snake"}]


@pytest.mark.parametrize(("method", "path", "allowed", "refused"), [
    ("delete", "/tags", {"GET", "POST"}, {"DELETE"}),
    ("patch", "/tags", {"GET", "POST"}, {"PATCH"}),
    ("post", "/tags/python", {"GET", "PATCH", "PUT", "DELETE"}, {"POST"}),
    ("post", "/posts/1/tags/python", {"PUT", "DELETE"}, {"POST"}),
], ids=["delete-list", "patch-list", "post-item", "post-link"])
def test_405_lists_the_allowed_methods(client: FlaskClient, method: str, path: str,
                                       allowed: set[str], refused: set[str]) -> None:
    response = getattr(client, method)(path, json={})
    assert_problem(response, 405)
    methods = {name.strip() for name in response.headers["Allow"].split(",")}
    assert allowed <= methods
    assert not refused & methods


@pytest.mark.parametrize(("body", "fields"), [
    ({"name": "jane", "email": "other@example.com"}, ["name"]),
    ({"name": "other", "email": "jane@example.com"}, ["email"]),
], ids=["name", "email"])
def test_409_names_the_unique_field(client: FlaskClient, engine: sa.Engine,
                                    body: dict[str, str], fields: list[str]) -> None:
    add_user(engine, "jane")
    other = add_user(engine, "other", email="other@example.com")
    response = client.patch(f"/users/{other}", json=body)
    problem = assert_problem(response, 409)
    assert [error["field"] for error in problem["errors"]] == fields
    assert rows(engine, "SELECT name, email FROM users ORDER BY id") == [
        {"name": "jane", "email": "jane@example.com"},
        {"name": "other", "email": "other@example.com"}]


@pytest.mark.parametrize("method", ["post", "patch"])
def test_409_names_the_foreign_key(client: FlaskClient, engine: sa.Engine, method: str) -> None:
    jane = add_user(engine, "jane")
    [post] = insert(engine, Post, {"title": "t", "user_id": jane})
    if method == "post":
        response = client.post("/posts", json={"title": "t", "user_id": 999})
    else:
        response = client.patch(f"/posts/{post}", json={"user_id": 999})
    problem = assert_problem(response, 409)
    assert [error["field"] for error in problem["errors"]] == ["user_id"]
    assert rows(engine, "SELECT id, user_id FROM posts") == [{"id": post, "user_id": jane}]


def test_413_limit_comes_from_the_settings(db_url: str) -> None:
    with serving(db_url, Tag, TABLEREST_MAX_BODY="64") as app:
        client, engine = app.test_client(), state_of(app).engine
        prefix, suffix = '{"name": "a", "label": "', '"}'
        fits = prefix + "x" * (64 - len(prefix) - len(suffix)) + suffix
        assert client.post("/tags", data=fits, content_type="application/json"
                           ).status_code == 201
        too_big = fits.replace('"a"', '"bb"')
        assert_problem(client.post("/tags", data=too_big, content_type="application/json"), 413)
        assert rows(engine, "SELECT name FROM tags") == [{"name": "a"}]


def test_415_when_the_body_has_no_content_type(client: FlaskClient, engine: sa.Engine) -> None:
    response = client.post("/tags", data=b'{"name": "python"}')
    assert_problem(response, 415)
    assert rows(engine, "SELECT name FROM tags") == []


def test_json_with_a_charset_or_a_json_suffix_is_accepted(client: FlaskClient,
                                                          engine: sa.Engine) -> None:
    for name, content_type in [("a", "application/json; charset=utf-8"),
                               ("b", "application/merge-patch+json")]:
        response = client.post("/tags", data=f'{{"name": "{name}"}}', content_type=content_type)
        assert response.status_code == 201, content_type
    assert rows(engine, "SELECT name FROM tags ORDER BY name") == [{"name": "a"}, {"name": "b"}]


def test_json_is_acceptable_through_wildcards_and_quality(client: FlaskClient,
                                                          engine: sa.Engine) -> None:
    insert(engine, Tag, {"name": "python"})
    for accept in ["*/*", "application/*", "application/json;q=0.5, image/png",
                   "application/problem+json"]:
        response = client.get("/tags/python", headers={"Accept": accept})
        assert response.status_code == 200, accept


# -- 500 ---------------------------------------------------------------------------------------


class BrokenTags(Resource):
    model = Tag

    def after_create(self, item: dict[str, Any], ctx: RequestContext) -> None:
        raise RuntimeError("secret internal detail")


def test_500_hides_the_error_logs_it_and_rolls_back(db_url: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with serving(db_url, BrokenTags) as app:
        client, engine = app.test_client(), state_of(app).engine
        with caplog.at_level(logging.ERROR, logger="tablerest"):
            response = client.post("/tags", json={"name": "python"})
        problem = assert_problem(response, 500)
        text = response.get_data(as_text=True)
        for leak in ("Traceback", "RuntimeError", "secret internal detail", "after_create",
                     ".py"):
            assert leak not in text
        request_id = problem["request_id"]
        assert request_id and request_id in problem["detail"]
        [record] = [r for r in caplog.records if request_id in r.getMessage()]
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], RuntimeError)
        assert rows(engine, "SELECT name FROM tags") == []
        # the next request works: the failed transaction left nothing behind
        assert client.get("/tags").json["items"] == []


def test_500_request_ids_differ(db_url: str) -> None:
    with serving(db_url, BrokenTags) as app:
        client = app.test_client()
        first = client.post("/tags", json={"name": "a"}).json["request_id"]
        second = client.post("/tags", json={"name": "b"}).json["request_id"]
        assert first != second
