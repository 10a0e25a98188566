"""The QUERY body: ``QUERY /things``, ``FETCH /things`` and ``POST /things/query`` take the
list query as JSON (nested and/or/not, the URL's operators, relation fields, order_by in
both forms, page, fields, include, count) and answer the same envelope as ``GET``; every
malformed body is a 400 that names the place in the body."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from conftest import rows
from factories import add_post, add_tags, add_user, link
from tablerest.query.parse import MAX_CONDITIONS, MAX_DEPTH


def at(day: int) -> dt.datetime:
    return dt.datetime(2024, 1, day, 10, tzinfo=dt.UTC)


@pytest.fixture
def blog(engine: sa.Engine) -> dict[str, int]:
    """alice (30) and bob (25) and carol (no age); five posts on Jan 1st to 5th.

    ==============  ======  =========  ======  ==========
    title           author  published  rating  tags
    ==============  ======  =========  ======  ==========
    Hello world     alice   yes        4.50    python
    hello again     alice   no         2.00
    SQL tips        bob     yes        -       sql
    Python tricks   bob     yes        3.25    python, sql
    Drafts          carol   no         1.00
    ==============  ======  =========  ======  ==========
    """
    ids = {"alice": add_user(engine, "alice", age=30), "bob": add_user(engine, "bob", age=25),
           "carol": add_user(engine, "carol")}
    for day, (title, author, published, rating) in enumerate([
        ("Hello world", "alice", True, "4.50"), ("hello again", "alice", False, "2.00"),
        ("SQL tips", "bob", True, None), ("Python tricks", "bob", True, "3.25"),
        ("Drafts", "carol", False, "1.00"),
    ], start=1):
        ids[title] = add_post(engine, ids[author], title, published=published,
                              rating=None if rating is None else decimal.Decimal(rating),
                              created_at=at(day), updated_at=at(day))
    add_tags(engine, "python", "sql")
    for title, tag in [("Hello world", "python"), ("SQL tips", "sql"),
                       ("Python tricks", "python"), ("Python tricks", "sql")]:
        link(engine, ids[title], tag)
    return ids


def query(client: FlaskClient, body: Any, path: str = "/posts", method: str = "QUERY",
          **options: Any) -> Any:
    if method == "POST":
        return client.post(f"{path}/query", json=body, **options)
    return client.open(path, method=method, json=body, **options)


def titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.json
    return [item["title"] for item in response.json["items"]]


# -- the three ways to send it -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["QUERY", "FETCH", "POST"])
def test_a_body_query_answers_what_get_answers(client: FlaskClient, blog: dict[str, int],
                                               method: str) -> None:
    body = {"where": {"published": True, "rating": {"gte": 3}}, "order_by": ["-rating"],
            "fields": ["id", "title", "rating"], "limit": 5}
    answer = query(client, body, method=method)
    same = client.get("/posts?published=true&rating__gte=3&sort=-rating&fields=id,title,rating"
                      "&limit=5")
    assert answer.status_code == 200
    assert answer.json == same.json
    assert titles(answer) == ["Hello world", "Python tricks"]


def test_an_empty_body_lists_everything(client: FlaskClient, blog: dict[str, int]) -> None:
    for body in ({}, {"where": {}}, {"where": None}):
        answer = query(client, body)
        assert titles(answer) == ["Hello world", "hello again", "SQL tips", "Python tricks",
                                  "Drafts"]
        assert answer.json["count"] == 5


def test_an_item_keyed_query_stays_reachable(client: FlaskClient, engine: sa.Engine) -> None:
    """POST /tags/query is the body query; the tag named "query" is read, changed and
    deleted at the same URL (werkzeug prefers the static rule only for its method, POST)."""
    add_tags(engine, "query", "other")
    assert client.get("/tags/query").json == {"name": "query", "label": None}
    assert client.patch("/tags/query", json={"label": "q"}).json == {"name": "query",
                                                                      "label": "q"}
    listed = client.post("/tags/query", json={"where": {"label": "q"}})
    assert listed.status_code == 200
    assert listed.json["items"] == [{"name": "query", "label": "q"}]
    assert client.delete("/tags/query").status_code == 204
    assert rows(engine, "SELECT name FROM tags") == [{"name": "other"}]


# -- where -------------------------------------------------------------------------------------


WHERES = [
    ({"title": "SQL tips"}, ["SQL tips"]),
    ({"title": {"eq": "SQL tips"}}, ["SQL tips"]),
    ({"title": {"ne": "Drafts"}}, ["Hello world", "hello again", "SQL tips", "Python tricks"]),
    ({"rating": {"gt": 1, "lt": 4}}, ["hello again", "Python tricks"]),
    ({"rating": {"lte": "2.00"}}, ["hello again", "Drafts"]),
    ({"rating": None}, ["SQL tips"]),
    ({"rating": {"ne": None}}, ["Hello world", "hello again", "Python tricks", "Drafts"]),
    ({"rating": {"isnull": True}}, ["SQL tips"]),
    ({"title": {"in": ["Drafts", "SQL tips", "nothing"]}}, ["SQL tips", "Drafts"]),
    ({"title": {"like": "%o%"}}, ["Hello world", "hello again", "Python tricks"]),
    ({"title": {"ilike": "HELLO%"}}, ["Hello world", "hello again"]),
    ({"created_at": {"gte": "2024-01-04T10:00:00Z"}}, ["Python tricks", "Drafts"]),
    ({"published": False}, ["hello again", "Drafts"]),
    ({"author.name": "bob"}, ["SQL tips", "Python tricks"]),
    ({"author.age": {"gte": 30}}, ["Hello world", "hello again"]),
    ({"tags.name": {"in": ["sql"]}}, ["SQL tips", "Python tricks"]),
    ({"or": [{"title": "Drafts"}, {"rating": {"gte": 4}}]}, ["Hello world", "Drafts"]),
    ({"and": [{"published": True}, {"not": {"author.name": "bob"}}]}, ["Hello world"]),
    ({"not": {"or": [{"published": True}, {"rating": {"lt": 2}}]}}, ["hello again"]),
    ({"or": [{"and": [{"author.name": "alice"}, {"published": False}]},
             {"and": [{"author.name": "bob"}, {"rating": None}]}]},
     ["hello again", "SQL tips"]),
    ({"published": True, "or": [{"tags.name": "python"}, {"rating": None}]},
     ["Hello world", "SQL tips", "Python tricks"]),
    ({"or": [{"title": "Drafts"}]}, ["Drafts"]),
    ({"not": {"not": {"title": "Drafts"}}}, ["Drafts"]),
]


@pytest.mark.parametrize(("where", "expected"), WHERES,
                         ids=[str(index) for index in range(len(WHERES))])
def test_where(client: FlaskClient, blog: dict[str, int], where: dict[str, Any],
               expected: list[str]) -> None:
    answer = query(client, {"where": where})
    assert titles(answer) == expected
    assert answer.json["count"] == len(expected)


def test_nesting_up_to_the_maximum_depth(client: FlaskClient, blog: dict[str, int]) -> None:
    where: dict[str, Any] = {"title": "Drafts"}
    for _ in range(MAX_DEPTH - 1):
        where = {"and": [where, {"published": False}]}
    assert titles(query(client, {"where": where})) == ["Drafts"]
    too_deep = {"not": where}
    answer = query(client, {"where": too_deep})
    assert answer.status_code == 400
    assert f"at most {MAX_DEPTH} levels" in answer.json["detail"]


def test_the_same_shape_with_other_values(client: FlaskClient, blog: dict[str, int]) -> None:
    """Statements are cached by shape; the values are parameters."""
    for name, expected in [("alice", ["Hello world", "hello again"]),
                           ("bob", ["SQL tips", "Python tricks"]), ("nobody", [])]:
        where = {"or": [{"author.name": name}, {"title": {"in": ["x", "y"]}}]}
        assert titles(query(client, {"where": where})) == expected


# -- order, page, fields, count -------------------------------------------------------------


@pytest.mark.parametrize("order", [
    ["-published", "-created_at"], "-published,-created_at", "published desc, created_at DESC",
    ["published desc", "-created_at"], " published  desc ,created_at desc,",
], ids=["list", "string", "tiddly", "mixed", "spaces"])
def test_order_by_forms(client: FlaskClient, blog: dict[str, int], order: Any) -> None:
    expected = ["Python tricks", "SQL tips", "Hello world", "Drafts", "hello again"]
    assert titles(query(client, {"order_by": order})) == expected
    assert titles(query(client, {"orderby": order})) == expected


def test_the_tiddly_seed_body_is_accepted_as_it_is(client: FlaskClient,
                                                   engine: sa.Engine) -> None:
    for name in ("admin", "root", "zed", "bea"):
        add_user(engine, f"{name}-1", email=f"{name}1@example.com")
    for index, email in enumerate(["d@example.com", "a@example.com", "c@example.com",
                                   "b@example.com", "e@example.com"]):
        add_user(engine, "admin" if index == 0 else f"admin{index}", email=email)
    answer = client.open("/users", method="QUERY", json={
        "where": {"name": {"like": "admin%"}}, "orderby": "email desc, name", "limit": 2,
        "offset": 2})
    assert answer.status_code == 200, answer.json
    assert [user["email"] for user in answer.json["items"]] == ["c@example.com",
                                                                "b@example.com"]
    exact = client.open("/users", method="QUERY", json={
        "where": {"name": "admin"}, "orderby": "email desc, name", "limit": 2, "offset": 2})
    assert exact.status_code == 200 and exact.json["items"] == [] and exact.json["count"] == 1


def test_page_fields_count_and_clamped_limit(client: FlaskClient, blog: dict[str, int]) -> None:
    answer = query(client, {"limit": 1000, "offset": 1, "fields": ["title"], "count": False})
    assert answer.json["limit"] == 100 and answer.json["offset"] == 1
    assert answer.json["count"] is None
    assert answer.json["items"][0] == {"title": "hello again"}
    assert query(client, {"fields": "id,title"}).json["items"][0].keys() == {"id", "title"}


def test_next_of_a_body_query_is_the_same_body_at_a_url(client: FlaskClient,
                                                        blog: dict[str, int]) -> None:
    body = {"where": {"title": {"ne": "Drafts"}}, "order_by": ["-created_at"], "limit": 3}
    for method in ("QUERY", "FETCH", "POST"):
        first = query(client, body, method=method)
        assert titles(first) == ["Python tricks", "SQL tips", "hello again"]
        next_url = first.json["next"]
        path = urlsplit(next_url).path
        assert path == ("/posts/query" if method == "POST" else "/posts")
        [token] = parse_qs(urlsplit(next_url).query)["cursor"]
        assert token.startswith("q.")
        second = client.open(next_url, method=method, json=body)
        assert titles(second) == ["Hello world"] and second.json["next"] is None
        # The cursor in the body works the same way.
        inline = query(client, {**body, "cursor": first.json["cursor"]}, method=method)
        assert inline.json == second.json
        # The link carries the query: a GET of it is the same page.
        assert client.get(f"/posts?cursor={token}").json == second.json
        # Another body with the link is refused, not silently answered.
        other = client.open(next_url, method=method, json={"limit": 3})
        assert other.status_code == 400


def test_following_next_of_a_body_query_with_get_keeps_the_query(
        client: FlaskClient, blog: dict[str, int]) -> None:
    body = {"where": {"title": {"ne": "Drafts"}}, "limit": 1, "fields": ["title"]}
    answer = query(client, body)
    seen = [item["title"] for item in answer.json["items"]]
    while answer.json["next"]:
        answer = client.get(answer.json["next"])
        assert answer.status_code == 200, answer.json
        assert answer.json["limit"] == 1
        assert all(set(item) == {"title"} for item in answer.json["items"])
        seen += [item["title"] for item in answer.json["items"]]
    every = query(client, {"where": {"title": {"ne": "Drafts"}}, "limit": 100})
    assert sorted(seen) == sorted(titles(every))
    # Extra parameters on a carried query are refused.
    first = query(client, body)
    refused = client.get(first.json["next"] + "&limit=50")
    assert refused.status_code == 400


def test_offset_pages_of_a_body_query(client: FlaskClient, blog: dict[str, int]) -> None:
    first = query(client, {"limit": 2, "offset": 0})
    assert list(parse_qs(urlsplit(first.json["next"]).query)) == ["cursor"]
    second = client.open(first.json["next"], method="QUERY", json={"limit": 2, "offset": 0})
    assert titles(second) == ["SQL tips", "Python tricks"]
    assert second.json["offset"] == 2
    assert client.get(first.json["next"]).json == second.json


def test_include_in_a_body(client: FlaskClient, blog: dict[str, int]) -> None:
    answer = query(client, {"where": {"title": "Python tricks"}, "include": ["author", "tags"],
                            "fields": ["title"]})
    item = answer.json["items"][0]
    assert item["title"] == "Python tricks"
    assert item["author"]["name"] == "bob" and "password" not in item["author"]
    assert sorted(tag["name"] for tag in item["tags"]) == ["python", "sql"]


def test_relation_lists_take_a_body(client: FlaskClient, blog: dict[str, int]) -> None:
    path = f"/users/{blog['alice']}/posts"
    for method in ("QUERY", "FETCH", "POST"):
        answer = query(client, {"where": {"published": False}}, path=path, method=method)
        assert titles(answer) == ["hello again"]
    tags = query(client, {"where": {"name": {"ne": "sql"}}},
                 path=f"/posts/{blog['Python tricks']}/tags")
    assert [tag["name"] for tag in tags.json["items"]] == ["python"]
    missing = query(client, {}, path="/users/999/posts")
    assert missing.status_code == 404


def test_the_microblog_timeline_takes_a_body(mb_client: FlaskClient, microblog: Any) -> None:
    from tablerest.extension import state_of

    engine = state_of(microblog).engine
    with engine.begin() as connection:
        users = sa.table("users", sa.column("id"), sa.column("name"), sa.column("email"),
                         sa.column("password"), sa.column("created_at"),
                         sa.column("updated_at"))
        messages = sa.table("messages", sa.column("content"), sa.column("user_id"),
                            sa.column("created_at"), sa.column("updated_at"))
        connection.execute(sa.insert(users).values(id=1, name="jane", email="j@example.com",
                                                   password="x", created_at=at(1),
                                                   updated_at=at(1)))
        for day in range(1, 5):
            connection.execute(sa.insert(messages).values(
                content=f"day {day}", user_id=1, created_at=at(day), updated_at=at(day)))
    for method in ("QUERY", "POST"):
        answer = query(mb_client, {"where": {"content": {"ne": "day 2"}}, "limit": 2},
                       path="/users/1/timeline", method=method)
        assert answer.status_code == 200, answer.json
        assert [m["content"] for m in answer.json["items"]] == ["day 4", "day 3"]
        rest = mb_client.open(answer.json["next"], method=method,
                              json={"where": {"content": {"ne": "day 2"}}, "limit": 2})
        assert [m["content"] for m in rest.json["items"]] == ["day 1"]


# -- malformed bodies --------------------------------------------------------------------------


def _deep(levels: int) -> dict[str, Any]:
    where: dict[str, Any] = {"title": "x"}
    for _ in range(levels - 1):
        where = {"not": where}
    return where


MALFORMED: list[tuple[str, Any, str]] = [
    ("unknown-key", {"filter": {}}, "filter"),
    ("unknown-operator", {"where": {"title": {"nope": 1}}}, "where.title.nope"),
    ("unknown-field", {"where": {"nope": 1}}, "where.nope"),
    ("hidden-field", {"where": {"author.password": "x"}}, "where.author.password"),
    ("unknown-relation", {"where": {"nope.name": 1}}, "where.nope.name"),
    ("two-relations", {"where": {"author.posts.title": "x"}}, "where.author.posts.title"),
    ("field-subfield", {"where": {"title.length": 1}}, "where.title.length"),
    ("in-object", {"where": {"id": {"in": {"a": 1}}}}, "where.id.in"),
    ("in-string", {"where": {"id": {"in": "1,2"}}}, "where.id.in"),
    ("in-empty", {"where": {"id": {"in": []}}}, "where.id.in"),
    ("in-wrong-items", {"where": {"id": {"in": [1, "x"]}}}, "where.id.in"),
    ("in-null-item", {"where": {"id": {"in": [1, None]}}}, "where.id.in"),
    ("eq-object", {"where": {"id": {"eq": {"a": 1}}}}, "where.id.eq"),
    ("literal-list", {"where": {"id": [1, 2]}}, "where.id"),
    ("gte-list", {"where": {"rating": {"gte": [1]}}}, "where.rating.gte"),
    ("gt-null", {"where": {"rating": {"gt": None}}}, "where.rating.gt"),
    ("wrong-type", {"where": {"id": "abc"}}, "where.id"),
    ("bool-type", {"where": {"published": "maybe"}}, "where.published"),
    ("datetime-type", {"where": {"created_at": {"gt": 5}}}, "where.created_at.gt"),
    ("like-on-integer", {"where": {"id": {"like": "1%"}}}, "where.id.like"),
    ("like-number", {"where": {"title": {"like": 5}}}, "where.title.like"),
    ("isnull-maybe", {"where": {"rating": {"isnull": "maybe"}}}, "where.rating.isnull"),
    ("no-operators", {"where": {"title": {}}}, "where.title"),
    ("where-list", {"where": [{"title": "x"}]}, "where"),
    ("where-string", {"where": "title = 'x'"}, "where"),
    ("and-object", {"where": {"and": {"title": "x"}}}, "where.and"),
    ("or-empty", {"where": {"or": []}}, "where.or"),
    ("or-item-not-object", {"where": {"or": [{"title": "x"}, 5]}}, "where.or[1]"),
    ("not-list", {"where": {"not": [{"title": "x"}]}}, "where.not"),
    ("empty-nested", {"where": {"and": [{}]}}, "where.and[0]"),
    ("too-deep", {"where": _deep(MAX_DEPTH + 1)},
     "where" + ".not" * MAX_DEPTH),
    ("too-many", {"where": {"or": [{"id": index} for index in range(MAX_CONDITIONS + 1)]}},
     f"where.or[{MAX_CONDITIONS}].id"),
    ("order-unknown", {"order_by": ["nope"]}, "order_by"),
    ("order-hidden", {"order_by": "author"}, "order_by"),
    ("order-twice", {"order_by": ["title", "-title"]}, "order_by"),
    ("order-number", {"order_by": 5}, "order_by"),
    ("order-list-of-numbers", {"order_by": [5]}, "order_by"),
    ("order-direction", {"orderby": "title sideways"}, "orderby"),
    ("order-both-signs", {"order_by": ["-title desc"]}, "order_by"),
    ("order-three-words", {"order_by": "title desc now"}, "order_by"),
    ("order-both-keys", {"order_by": ["title"], "orderby": "title"}, "orderby"),
    ("limit-string", {"limit": "2"}, "limit"),
    ("limit-bool", {"limit": True}, "limit"),
    ("limit-float", {"limit": 1.5}, "limit"),
    ("limit-zero", {"limit": 0}, "limit"),
    ("offset-negative", {"offset": -1}, "offset"),
    ("offset-string", {"offset": "1"}, "offset"),
    ("cursor-number", {"cursor": 5}, "cursor"),
    ("cursor-and-offset", {"cursor": "abc.def", "offset": 0}, "cursor"),
    ("cursor-tampered", {"cursor": "abc.def"}, "cursor"),
    ("fields-unknown", {"fields": ["nope"]}, "fields"),
    ("fields-hidden", {"fields": ["author"]}, "fields"),
    ("fields-object", {"fields": {"id": True}}, "fields"),
    ("include-unknown", {"include": ["nope"]}, "include"),
    ("include-field", {"include": ["title"]}, "include"),
    ("include-nested-unknown", {"include": ["author.nope"]}, "include"),
    ("count-string", {"count": "yes"}, "count"),
]


@pytest.mark.parametrize(("body", "place"), [(body, place) for _, body, place in MALFORMED],
                         ids=[name for name, _, _ in MALFORMED])
def test_malformed_bodies_are_400_naming_the_place(client: FlaskClient, engine: sa.Engine,
                                                   body: Any, place: str) -> None:
    add_user(engine, "alice")
    answer = query(client, body)
    assert answer.status_code == 400, answer.json
    assert answer.mimetype == "application/problem+json"
    assert [error["field"] for error in answer.json["errors"]] == [place]
    assert repr(place) in answer.json["detail"] or place == "cursor"


@pytest.mark.parametrize("body", [[], "where", 5, None, [{"where": {}}]],
                         ids=["list", "string", "number", "null", "list-of-objects"])
def test_a_body_that_is_not_an_object_is_400(client: FlaskClient, body: Any) -> None:
    answer = client.open("/posts", method="QUERY", data=orjson.dumps(body),
                         content_type="application/json")
    assert answer.status_code == 400
    assert "must be a JSON object" in answer.json["detail"]


def test_malformed_json_and_wrong_content_type(client: FlaskClient) -> None:
    broken = client.open("/posts", method="QUERY", data=b'{"where": ',
                         content_type="application/json")
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json["detail"]
    form = client.open("/posts", method="QUERY", data="where=x",
                       content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415


def test_url_parameters_beside_a_body_are_400(client: FlaskClient, blog: dict[str, int]) -> None:
    answer = client.open("/posts?title=Drafts", method="QUERY", json={})
    assert answer.status_code == 400
    assert [error["field"] for error in answer.json["errors"]] == ["title"]
    both = client.open("/posts?offset=1&cursor=x.y", method="QUERY", json={})
    assert both.status_code == 400
    assert [error["field"] for error in both.json["errors"]] == ["cursor"]
