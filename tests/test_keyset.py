"""Keyset pagination: without ``offset``, ``next`` carries a signed cursor that resumes after
the last row of the page, for any sort (made unique by the key), NULLs last, on SQLite and
PostgreSQL; following ``next`` visits every row once even while rows are inserted; cursors
that were altered, made for another list or another sort, or given with an offset are 400."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from factories import add_post, add_tags, add_user, insert, link
from tablerest import TableRest
from tablerest.extension import state_of
from testapp import Country, CountryName, Document, Post, create_app

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def at(minute: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)


@pytest.fixture
def posts(engine: sa.Engine) -> dict[str, int]:
    """Twelve posts by two authors: created_at with ties (every two posts share a minute),
    ratings with NULLs and ties, titles with mixed case, published or not."""
    ids = {"ann": add_user(engine, "ann", age=40), "bo": add_user(engine, "bo")}
    ratings = [None, "1.50", "2.00", None, "2.00", "3.75", None, "1.50", "4.00", "2.00",
               None, "0.25"]
    for index, rating in enumerate(ratings):
        title = f"{'Post' if index % 3 else 'post'} {index:02d}"
        ids[title] = add_post(
            engine, ids["ann" if index % 2 else "bo"], title, published=index % 4 == 0,
            rating=None if rating is None else decimal.Decimal(rating),
            body=None if index % 5 == 0 else f"body {index}",
            created_at=at(index // 2), updated_at=at(index // 2))
    return ids


def walk(client: FlaskClient, url: str, key: str = "title", most: int = 100,
         ) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every page from ``url`` on, by ``next``: the ``key`` of each item, and each page."""
    seen: list[Any] = []
    pages: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url is not None:
        assert len(pages) < most, "next never ends"
        response = client.get(next_url)
        assert response.status_code == 200, response.json
        page = response.json
        pages.append(page)
        seen += [item[key] for item in page["items"]]
        next_url = page["next"]
    return seen, pages


def everything(client: FlaskClient, path: str, query: str, key: str = "title") -> list[Any]:
    response = client.get(f"{path}?{query}&limit=100&offset=0")
    assert response.status_code == 200, response.json
    assert response.json["next"] is None
    return [item[key] for item in response.json["items"]]


SORTS = ["", "sort=-id", "sort=-created_at", "sort=created_at", "sort=rating", "sort=-rating",
         "sort=title", "sort=-title", "sort=published,-created_at", "sort=-published,rating",
         "sort=body,-rating", "sort=-body,created_at", "sort=user_id,-rating,title"]


@pytest.mark.parametrize("sort", SORTS, ids=[sort or "key" for sort in SORTS])
@pytest.mark.parametrize("limit", [1, 2, 5])
def test_next_visits_every_row_once_in_order(client: FlaskClient, posts: dict[str, int],
                                             sort: str, limit: int) -> None:
    expected = everything(client, "/posts", sort)
    seen, pages = walk(client, f"/posts?{sort}&limit={limit}")
    assert seen == expected
    assert len(expected) == 12
    for page in pages[:-1]:
        assert len(page["items"]) == limit
        assert isinstance(page["cursor"], str)
        assert page["offset"] is None and page["count"] == 12
        query = parse_qs(urlsplit(page["next"]).query)
        assert query["cursor"] == [page["cursor"]] and "offset" not in query
    assert pages[-1]["cursor"] is None and pages[-1]["next"] is None


def test_nulls_sort_last_in_both_directions(client: FlaskClient, posts: dict[str, int]) -> None:
    for sort in ("rating", "-rating"):
        ratings = [item["rating"] for item in
                   client.get(f"/posts?sort={sort}&fields=rating").json["items"]]
        assert ratings[-4:] == [None] * 4, sort
        known = [decimal.Decimal(value) for value in ratings[:-4]]
        assert known == sorted(known, reverse=sort.startswith("-")), sort


def test_filters_and_fields_apply_to_every_page(client: FlaskClient,
                                                posts: dict[str, int]) -> None:
    query = "rating__isnull=false&author__name=ann&sort=-rating&fields=title"
    seen, pages = walk(client, f"/posts?{query}&limit=2")
    assert seen == everything(client, "/posts", query)
    assert all(set(item) == {"title"} for page in pages for item in page["items"])
    assert all(page["count"] == len(seen) for page in pages)


def test_count_false_still_pages(client: FlaskClient, posts: dict[str, int]) -> None:
    seen, pages = walk(client, "/posts?count=false&limit=5&sort=-created_at")
    assert seen == everything(client, "/posts", "sort=-created_at")
    assert [len(page["items"]) for page in pages] == [5, 5, 2]
    assert all(page["count"] is None for page in pages)


def test_an_exact_multiple_ends_without_an_empty_page(client: FlaskClient,
                                                      posts: dict[str, int]) -> None:
    _seen, pages = walk(client, "/posts?limit=6")
    assert [len(page["items"]) for page in pages] == [6, 6]


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "rating", "-title"])
def test_rows_inserted_while_paging_do_not_shift_pages(client: FlaskClient, engine: sa.Engine,
                                                       posts: dict[str, int],
                                                       sort: str) -> None:
    before = everything(client, "/posts", f"sort={sort}")
    seen: list[str] = []
    url: str | None = f"/posts?sort={sort}&limit=3"
    new = 0
    while url is not None:
        page = client.get(url).json
        seen += [item["title"] for item in page["items"]]
        url = page["next"]
        # Rows that sort before, between and after the pages already read.
        for minute, rating in [(-5, "9.00"), (3, None), (100, "0.10")]:
            new += 1
            add_post(engine, posts["bo"], f"new {new:02d}", created_at=at(minute),
                     updated_at=at(minute), rating=None if rating is None
                     else decimal.Decimal(rating))
    old = [title for title in seen if not title.startswith("new")]
    assert old == before  # every row there at the start: once, in order
    assert len(seen) == len(set(seen))  # and nothing twice


def test_cursor_with_count_counts_the_whole_list(client: FlaskClient,
                                                 posts: dict[str, int]) -> None:
    first = client.get("/posts?limit=4").json
    second = client.get(first["next"]).json
    assert first["count"] == second["count"] == 12


def test_offset_paging_is_kept_when_asked_for(client: FlaskClient, posts: dict[str, int]) -> None:
    page = client.get("/posts?limit=5&offset=0&sort=-created_at").json
    assert page["cursor"] is None and page["offset"] == 0
    assert parse_qs(urlsplit(page["next"]).query)["offset"] == ["5"]
    seen, _ = walk(client, "/posts?limit=5&offset=0&sort=-created_at")
    assert seen == everything(client, "/posts", "sort=-created_at")


# -- keys of every kind, and link tables ------------------------------------------------------


def test_string_uuid_and_composite_keys(client: FlaskClient, engine: sa.Engine) -> None:
    insert(engine, Country, *({"code": f"{chr(65 + i)}{chr(90 - i)}", "name": f"c{i % 3}"}
                              for i in range(9)))
    insert(engine, CountryName, *({"country_code": "AZ", "lang": f"l{i}", "name": f"n{i % 2}"}
                                  for i in range(7)))
    insert(engine, Document, *({"title": f"d{i % 4}", "published_on":
                                None if i % 3 == 0 else dt.date(2024, 1, 1 + i % 5)}
                               for i in range(11)))
    for path, sort, key in [
        ("/countries", "", "code"), ("/countries", "sort=-name", "code"),
        ("/country_names", "", "lang"), ("/country_names", "sort=name", "lang"),
        ("/documents", "", "id"), ("/documents", "sort=-published_on", "id"),
        ("/documents", "sort=title,published_on", "id"),
    ]:
        seen, _ = walk(client, f"{path}?{sort}&limit=2", key=key)
        assert seen == everything(client, path, sort, key=key), (path, sort)


def test_relation_lists_page_by_keyset(client: FlaskClient, posts: dict[str, int]) -> None:
    url = f"/users/{posts['ann']}/posts"
    seen, pages = walk(client, f"{url}?limit=2&sort=-rating")
    assert seen == everything(client, url, "sort=-rating")
    assert len(seen) == 6 and len(pages) == 3


def test_many_to_many_lists_page_by_the_links_time(client: FlaskClient, engine: sa.Engine,
                                                   posts: dict[str, int]) -> None:
    names = [f"tag{index:02d}" for index in range(9)]
    add_tags(engine, *names)
    post = posts["post 00"]
    for index, name in enumerate(names):  # ties: three links a minute, not in name order
        link(engine, post, name, at(10 - index // 3))
    expected = everything(client, f"/posts/{post}/tags", "", key="name")
    assert expected == ["tag00", "tag01", "tag02", "tag03", "tag04", "tag05", "tag06",
                        "tag07", "tag08"]  # newest link first, then by key
    seen, pages = walk(client, f"/posts/{post}/tags?limit=2", key="name")
    assert seen == expected and len(pages) == 5
    # A link made while paging, newer than every other, does not shift the pages.
    first = client.get(f"/posts/{post}/tags?limit=4").json
    add_tags(engine, "late")
    link(engine, post, "late", at(60))
    rest, _ = walk(client, first["next"], key="name")
    assert rest == expected[4:]


def test_the_microblog_followers_page_newest_first(db_url: str) -> None:
    from microblog.app import create_app as create_microblog
    from microblog.models import Base as MicroblogBase
    from microblog.models import User, follows

    app = create_microblog({"DATABASE_URL": db_url,
                            "TABLEREST_SECRET_KEY": "microblog-test-secret-0123456789"})
    engine = state_of(app).engine
    MicroblogBase.metadata.create_all(engine)
    try:
        with engine.begin() as connection:
            ids = [connection.execute(sa.insert(User.__table__).values(
                name=f"u{index}", email=f"u{index}@example.com", password="x" * 8,
                created_at=at(0), updated_at=at(0)).returning(User.__table__.c.id)).scalar_one()
                for index in range(8)]
            for index, follower in enumerate(ids[1:]):
                connection.execute(sa.insert(follows).values(
                    follower_id=follower, followed_id=ids[0],
                    created_at=at(index // 2), updated_at=at(index // 2)))
        client = app.test_client()
        url = f"/users/{ids[0]}/followers"
        seen, pages = walk(client, f"{url}?limit=3", key="name")
        assert seen == ["u7", "u5", "u6", "u3", "u4", "u1", "u2"]  # ties: by key
        assert [len(page["items"]) for page in pages] == [3, 3, 1]
    finally:
        engine.dispose()


# -- refused cursors ---------------------------------------------------------------------------


def cursor_of(client: FlaskClient, url: str) -> str:
    cursor: str = client.get(url).json["cursor"]
    assert isinstance(cursor, str)
    return cursor


def assert_refused(response: Any, words: str) -> None:
    assert response.status_code == 400, response.json
    assert response.mimetype == "application/problem+json"
    assert [error["field"] for error in response.json["errors"]] == ["cursor"]
    assert words in response.json["detail"]


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1:]


def test_a_tampered_cursor_is_400(client: FlaskClient, posts: dict[str, int]) -> None:
    cursor = cursor_of(client, "/posts?limit=2&sort=-created_at")
    payload, tag = cursor.split(".")
    content = orjson.loads(base64.urlsafe_b64decode(payload + "=="))
    content[-1][-1] += 1  # resume one key further
    forged = base64.urlsafe_b64encode(orjson.dumps(content)).rstrip(b"=")
    for bad in [_flip(cursor, 3), _flip(cursor, len(cursor) - 2), payload, f"{payload}.",
                f"{forged.decode()}.{tag}", "", "garbage", "a.b", "é.é", cursor + cursor,
                "x" * 5000]:
        assert_refused(client.get("/posts", query_string={"cursor": bad,
                                                          "sort": "-created_at"}),
                       "not one this server issued")


def test_a_cursor_for_another_sort_is_400(client: FlaskClient, posts: dict[str, int]) -> None:
    cursor = cursor_of(client, "/posts?limit=2&sort=-created_at")
    for sort in ["created_at", "-rating", "-created_at,title", None]:
        query = {"cursor": cursor} | ({"sort": sort} if sort else {})
        assert_refused(client.get("/posts", query_string=query), "sort")


def test_a_cursor_for_another_list_is_400(client: FlaskClient, posts: dict[str, int]) -> None:
    from_users = cursor_of(client, "/users?limit=1")
    assert_refused(client.get(f"/posts?cursor={from_users}"), "another list")
    from_ann = cursor_of(client, f"/users/{posts['ann']}/posts?limit=1")
    assert_refused(client.get(f"/users/{posts['bo']}/posts?cursor={from_ann}"), "another list")
    assert_refused(client.get(f"/posts?cursor={from_ann}"), "another list")


def posts_app(db_url: str, secret: str | None) -> Flask:
    app = Flask(__name__)
    app.testing = True
    app.config.update(DATABASE_URL=db_url, TABLEREST_SECRET_KEY=secret)
    TableRest(app).add(Post)
    return app


def test_a_cursor_from_another_secret_is_400(db_url: str, posts: dict[str, int],
                                             client: FlaskClient) -> None:
    for secret in ("another-secret-key-0123456789", None):
        other = posts_app(db_url, secret)
        try:
            foreign = cursor_of(other.test_client(), "/posts?limit=2")
        finally:
            state_of(other).engine.dispose()
        assert_refused(client.get(f"/posts?limit=2&cursor={foreign}"), "not one this server")


def test_cursor_and_offset_together_are_400(client: FlaskClient, posts: dict[str, int]) -> None:
    cursor = cursor_of(client, "/posts?limit=2")
    response = client.get(f"/posts?limit=2&offset=2&cursor={cursor}")
    assert response.status_code == 400
    assert [error["field"] for error in response.json["errors"]] == ["cursor"]
    assert "not both" in response.json["detail"]


def test_without_a_secret_key_cursors_work_in_the_process(db_url: str,
                                                          posts: dict[str, int]) -> None:
    app = posts_app(db_url, None)
    try:
        assert state_of(app).settings.secret_key is None
        seen, pages = walk(app.test_client(), "/posts?limit=5")
        assert len(seen) == 12 and len(pages) == 3
    finally:
        state_of(app).engine.dispose()


def test_an_unsortable_value_cannot_be_a_cursor_value(client: FlaskClient,
                                                      engine: sa.Engine) -> None:
    """Sorting by a hidden field stays refused: a cursor never carries a hidden value."""
    add_user(engine, "ann")
    response = client.get("/users?sort=password")
    assert response.status_code == 400
    assert [error["field"] for error in response.json["errors"]] == ["sort"]


def test_the_post_model_sorts_by_any_visible_column(client: FlaskClient) -> None:
    sortable = [column.name for column in Post.__table__.columns]
    for name in sortable:
        assert client.get(f"/posts?sort=-{name}").status_code == 200, name


def test_apps_keep_their_own_cursors(db_url: str, posts: dict[str, int], app: Flask) -> None:
    """Two apps in one process with the same secret understand each other's cursors (the
    cursor names the list, not the app)."""
    twin = create_app(db_url)
    twin.testing = True
    try:
        cursor = cursor_of(twin.test_client(), "/posts?limit=3")
    finally:
        state_of(twin).engine.dispose()
    page = app.test_client().get(f"/posts?limit=3&cursor={cursor}").json
    assert [item["title"] for item in page["items"]] == ["post 03", "Post 04", "Post 05"]


@pytest.mark.sqlite_only
def test_sqlite_datetimes_stored_in_other_formats_still_page(tmp_path: Any) -> None:
    """SQLite compares datetimes as the text they are stored as; rows written by another
    program may use another format. The cursor keeps the stored text, so that the keyset
    condition compares exactly as ORDER BY does: every row once."""
    app = posts_app(f"sqlite:///{tmp_path / 'formats.db'}", "test-secret-key-0123456789")
    engine = state_of(app).engine
    Post.metadata.create_all(engine)
    try:
        user = add_user(engine, "ann")
        formats = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S+00:00"]
        with engine.begin() as connection:
            for index in range(12):
                stamp = at(index // 3).strftime(formats[index % 3])
                connection.execute(sa.text(
                    "INSERT INTO posts (title, user_id, published, created_at, updated_at) "
                    "VALUES (:title, :user, 0, :stamp, :stamp)"),
                    {"title": f"p{index:02d}", "user": user, "stamp": stamp})
        client = app.test_client()
        for sort in ("-created_at", "created_at"):
            seen, _ = walk(client, f"/posts?sort={sort}&limit=2")
            assert seen == everything(client, "/posts", f"sort={sort}")
            assert sorted(seen) == [f"p{index:02d}" for index in range(12)]
    finally:
        engine.dispose()
