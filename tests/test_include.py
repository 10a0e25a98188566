"""``include=``: related items embedded in list items (to-one as an object, to-many and
many-to-many as lists of the target's visible fields, under its row policy), in a constant
number of SQL statements whatever the page size. Nested paths (``posts.tags``) are in
``test_embeds.py``.

Statements are counted at the driver (``sqlite3``'s trace callback, a counting ``psycopg``
cursor): the fast read path runs prepared statements on the driver cursor, which SQLAlchemy's
``before_cursor_execute`` event never sees.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Table, event

from factories import add_post, add_tags, add_user, link, serving
from tablerest import Policy, RequestContext, Resource
from tablerest.extension import state_of
from testapp import Post, Tag, User

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def at(minute: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minute)


class SelectCounter:
    """The SELECT statements the driver runs on ``engine``'s connections."""

    def __init__(self, engine: sa.Engine) -> None:
        self.seen: list[str] = []
        self.engine = engine
        seen = self.seen

        class Counting(psycopg.Cursor[Any]):
            def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                seen.append(str(query))
                return super().execute(query, *args, **kwargs)

        def hook(dbapi_connection: Any, _record: Any) -> None:
            if engine.dialect.name == "sqlite":
                dbapi_connection.set_trace_callback(seen.append)
            else:
                dbapi_connection.cursor_factory = Counting

        self.hook = hook
        event.listen(engine, "connect", hook)
        engine.dispose()  # connections made from now on carry the hook

    def selects(self) -> int:
        return sum(1 for sql in self.seen if sql.lstrip().upper().startswith("SELECT"))

    def close(self) -> None:
        event.remove(self.engine, "connect", self.hook)
        self.engine.dispose()


@pytest.fixture
def counter(engine: sa.Engine) -> Iterator[SelectCounter]:
    found = SelectCounter(engine)
    yield found
    found.close()


@pytest.fixture
def blog(engine: sa.Engine) -> dict[str, Any]:
    """Three authors (carol has no posts), 30 posts by alice and bob, tags on some posts."""
    ids: dict[str, Any] = {name: add_user(engine, name) for name in ("alice", "bob", "carol")}
    ids["posts"] = [add_post(engine, ids["alice" if index % 3 else "bob"], f"post {index:02d}",
                             published=index % 2 == 0, created_at=at(index),
                             updated_at=at(index))
                    for index in range(30)]
    add_tags(engine, "a", "b", "c")
    for index, post in enumerate(ids["posts"][:10]):
        for minute, tag in enumerate("abc"[: index % 4]):
            link(engine, post, tag, at(100 + minute))
    return ids


def items(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.json
    result: list[dict[str, Any]] = response.json["items"]
    return result


# -- what is embedded --------------------------------------------------------------------------


def test_to_one_is_an_object_of_visible_fields(client: FlaskClient, blog: dict[str, Any]) -> None:
    listed = items(client.get("/posts?include=author&limit=4"))
    users = {user["id"]: user for user in items(client.get("/users"))}
    assert [post["author"] for post in listed] == [users[post["user_id"]] for post in listed]
    assert all("password" not in post["author"] for post in listed)
    assert {post["author"]["name"] for post in listed} == {"alice", "bob"}


def test_to_many_is_a_list_in_the_relations_order(client: FlaskClient,
                                                  blog: dict[str, Any]) -> None:
    listed = items(client.get("/users?include=posts&fields=name"))
    assert [user["name"] for user in listed] == ["alice", "bob", "carol"]
    for user in listed:
        assert set(user) == {"name", "posts"}
        expected = items(client.get(f"/users/{blog[user['name']]}/posts?limit=100"))
        assert user["posts"] == expected[:100]
    assert listed[2]["posts"] == []


def test_many_to_many_is_a_list_newest_link_first(client: FlaskClient,
                                                  blog: dict[str, Any]) -> None:
    listed = items(client.get("/posts?include=tags&fields=id&limit=5"))
    assert [[tag["name"] for tag in post["tags"]] for post in listed] == [
        [], ["a"], ["b", "a"], ["c", "b", "a"], []]
    assert listed[3]["tags"][0] == {"name": "c", "label": None}


def test_several_includes_sparse_fields_and_relation_lists(client: FlaskClient,
                                                           blog: dict[str, Any]) -> None:
    listed = items(client.get(f"/users/{blog['alice']}/posts?include=tags,author"
                              "&include=tags&fields=title&limit=3&sort=-created_at"))
    assert [set(post) for post in listed] == [{"title", "tags", "author"}] * 3
    assert all(post["author"]["name"] == "alice" for post in listed)
    first = items(client.get(f"/users/{blog['alice']}/posts?include=tags&limit=4"))
    assert [[tag["name"] for tag in post["tags"]] for post in first] == [
        ["a"], ["b", "a"], [], ["a"]]


def test_include_pages_with_the_list(client: FlaskClient, blog: dict[str, Any]) -> None:
    first = client.get("/posts?include=author&limit=7").json
    second = client.get(first["next"]).json
    assert [post["title"] for post in second["items"]] == [f"post {i:02d}" for i in range(7, 14)]
    assert all(post["author"]["id"] == post["user_id"] for post in second["items"])


# -- a constant number of statements ---------------------------------------------------------


@pytest.mark.parametrize(("path", "extra"), [
    ("/posts?include=author,tags", 0),
    ("/users?include=posts", 0),
    ("/posts?include=author&count=false", -1),
    ("/users/{alice}/posts?include=tags,author", 1),  # the parent row
], ids=["two-includes", "to-many", "no-count", "relation-list"])
def test_statements_do_not_grow_with_the_page(client: FlaskClient, blog: dict[str, Any],
                                              counter: SelectCounter, path: str,
                                              extra: int) -> None:
    includes = path.split("include=")[1].split("&")[0].count(",") + 1
    url = path.format(**blog)
    counts = []
    for limit in (1, 2, 7, 20, 100):
        before = counter.selects()
        assert client.get(f"{url}&limit={limit}").status_code == 200
        counts.append(counter.selects() - before)
    # the page, the count, one statement per include (and the parent row)
    assert counts == [2 + includes + extra] * 5


class HideCarol(Policy):
    def visible(self, ctx: RequestContext, table: Table) -> sa.ColumnElement[bool]:
        return table.c.name != "carol"


class PublishedOnly(Policy):
    def visible(self, ctx: RequestContext, table: Table) -> sa.ColumnElement[bool]:
        return table.c.published.is_(True)


@pytest.fixture
def guarded(db_url: str) -> Iterator[Flask]:
    """users hide carol, posts show published ones only, at most 3 posts per included list."""
    with serving(db_url, Resource(User, policy=HideCarol()),
                 Resource(Post, policy=PublishedOnly(), max_limit=3), Tag) as app:
        yield app


def test_includes_follow_the_targets_policy_and_cap(guarded: Flask) -> None:
    engine = state_of(guarded).engine
    alice, carol = add_user(engine, "alice"), add_user(engine, "carol")
    for index in range(8):
        add_post(engine, alice, f"a{index}", published=index != 1)
    add_post(engine, carol, "by carol", published=True)
    client = guarded.test_client()
    users = items(client.get("/users?include=posts"))
    assert [user["name"] for user in users] == ["alice"]
    assert [post["title"] for post in users[0]["posts"]] == ["a0", "a2", "a3"]  # capped at 3
    alice_item = {key: value for key, value in users[0].items() if key != "posts"}
    posts = items(client.get("/posts?include=author&fields=title&limit=3&sort=-id"))
    assert posts == [{"title": "by carol", "author": None},  # carol is not visible
                     {"title": "a7", "author": alice_item}, {"title": "a6", "author": alice_item}]


def test_the_policy_path_also_runs_a_constant_number_of_statements(guarded: Flask) -> None:
    engine = state_of(guarded).engine
    for name in ("alice", "bob"):
        user = add_user(engine, name)
        for index in range(6):
            add_post(engine, user, f"{name} {index}", published=True)
    counter = SelectCounter(engine)
    try:
        client = guarded.test_client()
        counts = []
        for limit in (1, 3):
            before = counter.selects()
            assert client.get(f"/posts?include=author,tags&limit={limit}").status_code == 200
            counts.append(counter.selects() - before)
        assert counts[0] == counts[1] == 4
    finally:
        counter.close()


def test_many_parents_at_once(client: FlaskClient, engine: sa.Engine) -> None:
    users = [add_user(engine, f"user{index:03d}") for index in range(100)]
    for user in users:
        add_post(engine, user, f"by {user}")
    for user in users[::3]:
        add_post(engine, user, f"also by {user}")
    listed = items(client.get("/users?include=posts&limit=50&fields=id"))  # users' maximum
    assert len(listed) == 50
    assert sum(len(user["posts"]) for user in listed) == 67
    assert all(post["user_id"] == user["id"] for user in listed for post in user["posts"])
    posts = items(client.get("/posts?include=author&limit=100&fields=user_id"))
    assert len(posts) == 100
    assert all(post["author"]["id"] == post["user_id"] for post in posts)


# -- refused -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "words"), [
    ("/posts?include=nope", "no relation 'nope'"),
    ("/posts?include=title", "is a field"),
    ("/posts?include=author.nope", "no relation 'nope' of 'author'"),
    ("/posts?include=author,author.posts.title", "'title' of 'author.posts' is a field"),
    ("/posts?include=author..posts", "empty relation name"),
    ("/posts?include=" + ".".join(["author", "posts"] * 5), "at most 8 deep"),
    ("/users?include=password", "no relation 'password'"),
    ("/users?include=posts.author.password", "no relation 'password'"),
    ("/users/1/posts?include=nope", "no relation 'nope'"),
    ("/users/1/posts?include=tags.nope", "no relation 'nope' of 'tags'"),
], ids=["unknown", "field", "unknown-nested", "field-nested", "empty", "too-deep",
        "hidden-field", "hidden-field-nested", "relation-list", "relation-list-nested"])
def test_includes_that_are_not_relations_are_400(client: FlaskClient, engine: sa.Engine,
                                                 path: str, words: str) -> None:
    add_user(engine, "alice")
    response = client.get(path)
    assert response.status_code == 400
    assert [error["field"] for error in response.json["errors"]] == ["include"]
    assert words in response.json["detail"]


def test_relations_that_are_not_exposed_cannot_be_included(db_url: str) -> None:
    with serving(db_url, Resource(User, relations=()), Post) as app:
        client = app.test_client()
        assert client.get("/users?include=posts").status_code == 400
        assert client.get("/posts?include=author").status_code == 200
    with serving(db_url, Post) as app:  # users are no resource here
        response = app.test_client().get("/posts?include=author")
        assert response.status_code == 400
        assert "no relation 'author'" in response.json["detail"]


def test_streamed_lists_refuse_include(client: FlaskClient, blog: dict[str, Any]) -> None:
    for accept in ("text/csv", "application/x-ndjson"):
        response = client.get("/posts?include=author", headers={"Accept": accept})
        assert response.status_code == 400
        assert [error["field"] for error in response.json["errors"]] == ["include"]
