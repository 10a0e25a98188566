"""Lists: filters and their operators, filters through a relationship, sort, limit, offset,
count, sparse fields and the ``next`` link; list-valued parameters given as a comma list or
repeated; and every malformed parameter answered with a 400 that names it."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from conftest import rows
from factories import add_post, add_tags, add_user, insert, link, serving
from tablerest.extension import state_of
from testapp import Document, Tag

ENVELOPE = {"items", "count", "count_kind", "limit", "offset", "cursor", "next"}


def at(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2024, 1, day, hour, tzinfo=dt.UTC)


@pytest.fixture
def blog(engine: sa.Engine) -> dict[str, int]:
    """Three authors, five posts (created on Jan 1st to 5th, 10:00 UTC), two tags.

    ==============  ======  =========  ======  ==========  ============
    title           author  published  rating  body        tags
    ==============  ======  =========  ======  ==========  ============
    Hello world     alice   yes        4.50    first       python
    hello again     alice   no         2.00    -
    SQL tips        bob     yes        -       joins       sql
    Python tricks   bob     yes        3.25    decorators  python, sql
    Drafts          carol   no         1.00    -
    ==============  ======  =========  ======  ==========  ============
    """
    ids = {"alice": add_user(engine, "alice", age=30), "bob": add_user(engine, "bob", age=25),
           "carol": add_user(engine, "carol")}
    posts = [
        ("Hello world", "alice", True, "4.50", "first"),
        ("hello again", "alice", False, "2.00", None),
        ("SQL tips", "bob", True, None, "joins"),
        ("Python tricks", "bob", True, "3.25", "decorators"),
        ("Drafts", "carol", False, "1.00", None),
    ]
    for day, (title, author, published, rating, body) in enumerate(posts, start=1):
        ids[title] = add_post(
            engine, ids[author], title, published=published, body=body,
            rating=None if rating is None else decimal.Decimal(rating),
            created_at=at(day), updated_at=at(day))
    add_tags(engine, "python", "sql")
    link(engine, ids["Hello world"], "python")
    link(engine, ids["SQL tips"], "sql")
    link(engine, ids["Python tricks"], "python")
    link(engine, ids["Python tricks"], "sql")
    return ids


def titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.json
    return [item["title"] for item in response.json["items"]]


# -- filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    ("title=Hello%20world", ["Hello world"]),
    ("title__eq=SQL%20tips", ["SQL tips"]),
    ("title__ne=Drafts", ["Hello world", "hello again", "SQL tips", "Python tricks"]),
    ("rating=4.5", ["Hello world"]),
    ("rating__lt=2", ["Drafts"]),
    ("rating__lte=2", ["hello again", "Drafts"]),
    ("rating__gt=3.25", ["Hello world"]),
    ("rating__gte=3.25", ["Hello world", "Python tricks"]),
    ("id__in={Drafts},{SQL tips}", ["SQL tips", "Drafts"]),
    ("title__in=Drafts,SQL%20tips,nothing", ["SQL tips", "Drafts"]),
    ("title__like=hello%25", ["hello again"]),
    ("title__like=%25o%25", ["Hello world", "hello again", "Python tricks"]),
    ("title__like=_QL%25", ["SQL tips"]),
    ("title__ilike=HELLO%25", ["Hello world", "hello again"]),
    ("body__isnull=true", ["hello again", "Drafts"]),
    ("body__isnull=false", ["Hello world", "SQL tips", "Python tricks"]),
    ("rating__isnull=true", ["SQL tips"]),
    ("published=true", ["Hello world", "SQL tips", "Python tricks"]),
    ("published=false", ["hello again", "Drafts"]),
    ("published=1", ["Hello world", "SQL tips", "Python tricks"]),
    ("created_at=2024-01-01T10:00:00Z", ["Hello world"]),
    ("created_at=2024-01-01T10:00:00", ["Hello world"]),
    ("created_at__gte=2024-01-03T10:00:00Z", ["SQL tips", "Python tricks", "Drafts"]),
    ("created_at__gt=2024-01-03T10:00:00%2B00:00", ["Python tricks", "Drafts"]),
    ("created_at__lt=2024-01-02T12:00:00%2B02:00", ["Hello world"]),
    ("created_at__lte=2024-01-02T12:00:00%2B02:00", ["Hello world", "hello again"]),
    ("user_id={bob}", ["SQL tips", "Python tricks"]),
    ("published=true&rating__gte=3", ["Hello world", "Python tricks"]),
    ("rating__gt=1&rating__lt=4", ["hello again", "Python tricks"]),
    ("title=nothing", []),
], ids=["eq-implicit", "eq", "ne", "decimal-eq", "lt", "lte", "gt", "gte", "in-int", "in-text",
        "like-case-sensitive", "like-contains", "like-underscore", "ilike",
        "isnull-true", "isnull-false", "isnull-decimal", "bool-true", "bool-false", "bool-1",
        "datetime-eq", "datetime-naive-is-utc", "datetime-gte", "datetime-gt", "datetime-offset-lt",
        "datetime-offset-lte", "foreign-key", "two-filters-and", "range", "no-match"])
def test_filter_operators(client: FlaskClient, blog: dict[str, int], query: str,
                          expected: list[str]) -> None:
    response = client.get(f"/posts?{query.format(**blog)}")
    assert titles(response) == expected
    assert response.json["count"] == len(expected)


@pytest.mark.parametrize(("path", "query", "expected"), [
    ("/posts", "author__name=alice", ["Hello world", "hello again"]),
    ("/posts", "author__name__in=bob,carol", ["SQL tips", "Python tricks", "Drafts"]),
    ("/posts", "author__age__gte=30", ["Hello world", "hello again"]),
    ("/posts", "author__age__isnull=true", ["Drafts"]),
    ("/posts", "tags__name=python", ["Hello world", "Python tricks"]),
    ("/posts", "tags__name__in=python,sql", ["Hello world", "SQL tips", "Python tricks"]),
    ("/posts", "tags__name=sql&author__name=bob&rating__isnull=false", ["Python tricks"]),
    ("/users", "posts__published=true", ["alice", "bob"]),
    ("/users", "posts__published=false", ["alice", "carol"]),
    ("/users", "posts__title__like=%25tips", ["bob"]),
], ids=["to-one", "to-one-in", "to-one-int", "to-one-isnull", "many-to-many",
        "many-to-many-in", "mixed", "to-many", "to-many-false", "to-many-like"])
def test_filter_through_a_relationship(client: FlaskClient, blog: dict[str, int], path: str,
                                       query: str, expected: list[str]) -> None:
    response = client.get(f"{path}?{query}")
    assert response.status_code == 200, response.json
    key = "title" if path == "/posts" else "name"
    # each row once, however many related rows match
    assert [item[key] for item in response.json["items"]] == expected
    assert response.json["count"] == len(expected)


def test_filter_on_dates_and_uuids(client: FlaskClient, engine: sa.Engine) -> None:
    first, second = insert(engine, Document,
                           {"title": "old", "published_on": dt.date(2023, 12, 31)},
                           {"title": "new", "published_on": dt.date(2024, 1, 1)})
    by_date = client.get("/documents?published_on__lt=2024-01-01")
    assert [item["title"] for item in by_date.json["items"]] == ["old"]
    by_id = client.get(f"/documents?id={second}")
    assert [item["title"] for item in by_id.json["items"]] == ["new"]
    by_ids = client.get(f"/documents?id__in={first},{second}&sort=published_on")
    assert [item["title"] for item in by_ids.json["items"]] == ["old", "new"]


def test_repeated_filters_are_anded(client: FlaskClient, blog: dict[str, int]) -> None:
    response = client.get("/posts?rating__gt=1&rating__gt=3")
    assert titles(response) == ["Hello world", "Python tricks"]


# -- list-valued parameters: comma list or repeated --------------------------------------------


ALL_BY_ID = ["Hello world", "hello again", "SQL tips", "Python tricks", "Drafts"]


@pytest.mark.parametrize(("comma", "repeated", "expected"), [
    pytest.param("title__in=Drafts,SQL%20tips", "title__in=Drafts&title__in=SQL%20tips",
                 ["SQL tips", "Drafts"], id="in"),
    pytest.param("sort=-published,-created_at", "sort=-published&sort=-created_at",
                 ["Python tricks", "SQL tips", "Hello world", "Drafts", "hello again"],
                 id="sort"),
    pytest.param("fields=id,title", "fields=id&fields=title", ALL_BY_ID, id="fields"),
])
def test_list_parameters_comma_or_repeated(client: FlaskClient, blog: dict[str, int],
                                           comma: str, repeated: str,
                                           expected: list[str]) -> None:
    by_comma, by_repeat = client.get(f"/posts?{comma}"), client.get(f"/posts?{repeated}")
    assert titles(by_comma) == titles(by_repeat) == expected
    assert by_comma.json["items"] == by_repeat.json["items"]
    if comma.startswith("fields"):
        assert all(set(item) == {"id", "title"} for item in by_repeat.json["items"])


# -- sort --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sort", "expected"), [
    ("-created_at", ["Drafts", "Python tricks", "SQL tips", "hello again", "Hello world"]),
    ("%2Bcreated_at", ["Hello world", "hello again", "SQL tips", "Python tricks", "Drafts"]),
    ("published", ["hello again", "Drafts", "Hello world", "SQL tips", "Python tricks"]),
    ("-published,-created_at",
     ["Python tricks", "SQL tips", "Hello world", "Drafts", "hello again"]),
    ("user_id,-id", ["hello again", "Hello world", "Python tricks", "SQL tips", "Drafts"]),
], ids=["descending", "plus-ascending", "ties-by-key", "two-keys", "then-key-descending"])
def test_sort(client: FlaskClient, blog: dict[str, int], sort: str,
              expected: list[str]) -> None:
    assert titles(client.get(f"/posts?sort={sort}")) == expected


def test_default_order_is_the_primary_key(client: FlaskClient, engine: sa.Engine) -> None:
    add_tags(engine, "sql", "c", "python")  # inserted out of key order
    response = client.get("/tags")
    assert [item["name"] for item in response.json["items"]] == ["c", "python", "sql"]


def test_sort_applies_to_relationship_lists(client: FlaskClient, blog: dict[str, int]) -> None:
    response = client.get(f"/users/{blog['alice']}/posts?sort=-created_at")
    assert titles(response) == ["hello again", "Hello world"]


# -- limit, offset, count, next ----------------------------------------------------------------


def test_envelope_of_a_full_list(client: FlaskClient, blog: dict[str, int]) -> None:
    response = client.get("/posts")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.json
    assert set(body) == ENVELOPE
    assert len(body["items"]) == body["count"] == 5
    assert body["limit"] == 20  # TABLEREST_DEFAULT_LIMIT's default
    assert body["next"] is None
    assert body["offset"] is None


def test_limit_and_offset(client: FlaskClient, blog: dict[str, int]) -> None:
    response = client.get("/posts?limit=2&offset=1")
    assert titles(response) == ["hello again", "SQL tips"]
    assert (response.json["limit"], response.json["offset"], response.json["count"]) == (2, 1, 5)
    assert response.json["next"] is not None
    beyond = client.get("/posts?offset=10")
    assert titles(beyond) == []
    assert (beyond.json["count"], beyond.json["next"]) == (5, None)


@pytest.mark.parametrize("offset", [2**31, 2**62], ids=["past-int32", "largest"])
def test_a_huge_offset_is_an_empty_page(client: FlaskClient, blog: dict[str, int],
                                        offset: int) -> None:
    """PostgreSQL's OFFSET is a bigint: an offset past 32 bits is bound as one."""
    response = client.get(f"/posts?offset={offset}")
    assert response.status_code == 200, response.json
    assert (titles(response), response.json["offset"]) == ([], offset)
    body = client.post("/posts/query", json={"offset": offset, "where": {"title": "SQL tips"}})
    assert body.status_code == 200, body.json
    assert body.json["items"] == []


def test_an_offset_past_the_largest_is_400(client: FlaskClient) -> None:
    response = client.get(f"/posts?offset={2**62 + 1}")
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "offset"


@pytest.mark.parametrize(("path", "clamped"), [("/posts", 100), ("/users", 50)],
                         ids=["settings-maximum", "resource-maximum"])
def test_limit_is_clamped_to_the_maximum(client: FlaskClient, blog: dict[str, int], path: str,
                                         clamped: int) -> None:
    response = client.get(f"{path}?limit=1000000")
    assert response.status_code == 200
    assert response.json["limit"] == clamped


def test_default_limit_from_settings(db_url: str) -> None:
    with serving(db_url, Tag, TABLEREST_DEFAULT_LIMIT="2") as app:
        add_tags(state_of(app).engine, "a", "b", "c")
        body = app.test_client().get("/tags").json
        assert body["limit"] == 2
        assert [item["name"] for item in body["items"]] == ["a", "b"]
        assert body["count"] == 3


def follow(client: FlaskClient, url: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Every page from ``url`` on, by ``next``: the titles in order, and each envelope."""
    collected: list[str] = []
    pages: list[dict[str, Any]] = []
    while url is not None:
        assert len(pages) < 10, "next never ends"
        response = client.get(url)
        assert response.status_code == 200, response.json
        pages.append(response.json)
        collected += [item["title"] for item in response.json["items"]]
        url = response.json["next"]
    return collected, pages


@pytest.mark.parametrize("query", [
    "limit=2", "limit=2&count=false", "limit=2&offset=0", "limit=1&sort=-created_at",
    "limit=2&published=true&sort=-rating", "limit=5", "limit=4&count=false",
], ids=["keyset", "no-count", "offset", "one-by-one", "filtered-sorted", "one-page",
        "exact-multiple-no-count"])
def test_next_walks_every_page_once(client: FlaskClient, blog: dict[str, int],
                                    query: str) -> None:
    everything = titles(client.get(f"/posts?{_without_limit(query)}&limit=100"))
    collected, pages = follow(client, f"/posts?{query}")
    assert collected == everything
    limit = int(parse_qs(query)["limit"][0])
    assert all(len(page["items"]) <= limit for page in pages)
    assert pages[-1]["next"] is None


def _without_limit(query: str) -> str:
    return "&".join(part for part in query.split("&") if not part.startswith("limit="))


def test_next_keeps_the_filters_and_the_offset_form(client: FlaskClient,
                                                    blog: dict[str, int]) -> None:
    response = client.get("/posts?published=true&sort=-created_at&limit=2&offset=0")
    next_url = urlsplit(response.json["next"])
    assert next_url.path == "/posts"
    params = parse_qs(next_url.query)
    assert params["published"] == ["true"]
    assert params["sort"] == ["-created_at"]
    assert params["limit"] == ["2"]
    assert params["offset"] == ["2"]


def test_count_false_skips_the_total(client: FlaskClient, blog: dict[str, int]) -> None:
    response = client.get("/posts?count=false&limit=2")
    assert response.json["count"] is None
    assert len(response.json["items"]) == 2
    assert response.json["next"] is not None


# -- sparse fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "expected"), [
    ("id,title", {"id", "title"}),
    ("title,title,rating", {"title", "rating"}),
    ("created_at", {"created_at"}),
], ids=["two", "duplicate", "timestamp"])
def test_sparse_fields(client: FlaskClient, blog: dict[str, int], fields: str,
                       expected: set[str]) -> None:
    response = client.get(f"/posts?fields={fields}")
    assert response.status_code == 200
    assert len(response.json["items"]) == 5
    assert all(set(item) == expected for item in response.json["items"])


def test_sparse_fields_on_a_relationship_list(client: FlaskClient, blog: dict[str, int]) -> None:
    response = client.get(f"/posts/{blog['Python tricks']}/tags?fields=name&sort=name")
    assert response.json["items"] == [{"name": "python"}, {"name": "sql"}]


# -- malformed parameters ----------------------------------------------------------------------


MALFORMED = [
    ("nope=1", "nope"),
    ("title__nope=1", "title__nope"),
    ("title__in=", "title__in"),
    ("id=abc", "id"),
    ("id=1.5", "id"),
    ("id__in=1,x", "id__in"),
    ("rating=abc", "rating"),
    ("rating=NaN", "rating"),
    ("published=maybe", "published"),
    ("created_at__gt=yesterday", "created_at__gt"),
    ("created_at__gt=2024-01-01T10:00:00%2B25:00", "created_at__gt"),
    ("body__isnull=maybe", "body__isnull"),
    ("id__like=1%25", "id__like"),
    ("author__nope=x", "author__nope"),
    ("nope__name=x", "nope__name"),
    ("author__name__eq__x=1", "author__name__eq__x"),
    ("author__posts__title=x", "author__posts__title"),
    ("sort=nope", "sort"),
    ("sort=-nope", "sort"),
    ("sort=title,-title", "sort"),
    ("sort=-", "sort"),
    ("fields=nope", "fields"),
    ("fields=id,nope", "fields"),
    ("limit=0", "limit"),
    ("limit=-1", "limit"),
    ("limit=abc", "limit"),
    ("limit=1.5", "limit"),
    ("limit=1&limit=2", "limit"),
    ("offset=-1", "offset"),
    ("offset=abc", "offset"),
    ("count=maybe", "count"),
]


@pytest.mark.parametrize(("query", "parameter"), MALFORMED,
                         ids=[query for query, _ in MALFORMED])
def test_malformed_parameters_are_400_naming_them(client: FlaskClient, engine: sa.Engine,
                                                  query: str, parameter: str) -> None:
    response = client.get(f"/posts?{query}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    body = response.json
    assert body["status"] == 400
    assert parameter in body["detail"]
    assert [error["field"] for error in body["errors"]] == [parameter]
    assert rows(engine, "SELECT count(*) AS n FROM posts") == [{"n": 0}]


def test_malformed_parameters_on_a_relationship_list(client: FlaskClient,
                                                     blog: dict[str, int]) -> None:
    response = client.get(f"/users/{blog['alice']}/posts?nope=1")
    assert response.status_code == 400
    assert [error["field"] for error in response.json["errors"]] == ["nope"]
