"""The create path runs on the driver connection: no SQLAlchemy ``Connection`` unless a hook
or policy asks for one, and then one in the same transaction (committed or rolled back with
the rest)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from conftest import rows
from factories import serving
from tablerest import Forbidden, Policy, RequestContext, Resource
from tablerest.extension import state_of
from test_hot_paths import add_user, bearer
from testapp import Post, Tag, User

USER = {"name": "ann", "email": "ann@example.com", "password": "password-1"}
USER_BY_ID = sa.select(User.name).where(User.id == sa.bindparam("id"))


@contextmanager
def connections_made(engine: sa.Engine) -> Iterator[list[Any]]:
    """The SQLAlchemy ``Connection``s made on ``engine`` inside the block."""
    made: list[Any] = []

    def connected(connection: Any) -> None:
        made.append(connection)

    event.listen(engine, "engine_connect", connected)
    try:
        yield made
    finally:
        event.remove(engine, "engine_connect", connected)


def test_a_create_without_hooks_makes_no_sqlalchemy_connection(db_url: str,
                                                              engine: sa.Engine) -> None:
    with serving(db_url, User, Post) as app:
        client = app.test_client()
        with connections_made(state_of(app).engine) as made:
            user = client.post("/users", json=USER)
            post = client.post(f"/users/{user.get_json()['id']}/posts", json={"title": "t"})
            missing = client.post("/users/999/posts", json={"title": "t"})
        assert made == []
    assert user.status_code == 201, user.get_json()
    assert user.headers["Location"] == f"/users/{user.get_json()['id']}"
    assert post.status_code == 201, post.get_json()
    assert post.get_json()["user_id"] == user.get_json()["id"]
    assert post.headers["Location"] == f"/posts/{post.get_json()['id']}"
    assert missing.status_code == 404
    assert missing.get_json()["detail"] == "No users item has the key '999'."
    assert [row["title"] for row in rows(engine, "SELECT title FROM posts")] == ["t"]


class CheckedPolicy(Policy):
    """A policy that reads the database (ctx.first) before it lets a post in."""

    def can_create(self, ctx: RequestContext, values: dict[str, Any]) -> None:
        if ctx.first(USER_BY_ID, id=values["user_id"]) == ("blocked",):
            raise Forbidden("This user may not post.")


class TaggingPosts(Resource):
    """Hooks that write through ``ctx.connection``: a tag per post, an error on demand."""

    model = Post
    policy = CheckedPolicy()

    def before_create(self, values: dict[str, Any], ctx: RequestContext) -> None:
        ctx.connection.execute(sa.insert(Tag).values(name=f"tag-{values['title']}"))

    def after_create(self, item: dict[str, Any], ctx: RequestContext) -> None:
        count = ctx.connection.execute(sa.select(sa.func.count()).select_from(Tag)).scalar()
        if item["title"] == "boom":
            raise Forbidden(f"No booms ({count} tags so far).")


def test_hooks_that_run_sql_write_in_the_same_transaction(db_url: str,
                                                          engine: sa.Engine) -> None:
    with serving(db_url, User, TaggingPosts) as app:
        client = app.test_client()
        user = client.post("/users", json=USER).get_json()
        created = client.post(f"/users/{user['id']}/posts", json={"title": "one"})
        assert created.status_code == 201, created.get_json()
        # The second row's after_create fails: the first row, both tags, all rolled back.
        failed = client.post("/posts", json=[{"title": "two", "user_id": user["id"]},
                                             {"title": "boom", "user_id": user["id"]}])
        assert failed.status_code == 403, failed.get_json()
        assert failed.get_json()["detail"] == "No booms (3 tags so far)."
        # The connection went back to the pool usable, outside any transaction.
        again = client.post("/posts", json={"title": "three", "user_id": user["id"]})
        assert again.status_code == 201, again.get_json()
    assert [row["title"] for row in rows(engine, "SELECT title FROM posts ORDER BY id")] \
        == ["one", "three"]
    assert [row["name"] for row in rows(engine, "SELECT name FROM tags ORDER BY name")] \
        == ["tag-one", "tag-three"]


def test_a_policy_reads_on_the_driver_and_its_refusal_writes_nothing(
        db_url: str, engine: sa.Engine) -> None:
    with serving(db_url, User, TaggingPosts) as app:
        client = app.test_client()
        user = client.post("/users", json={**USER, "name": "blocked"}).get_json()
        refused = client.post(f"/users/{user['id']}/posts", json={"title": "one"})
        assert refused.status_code == 403, refused.get_json()
        assert refused.get_json()["detail"] == "This user may not post."
    assert rows(engine, "SELECT id FROM posts") == []
    assert rows(engine, "SELECT name FROM tags") == []


def test_a_create_under_a_missing_parent_is_404_whatever_the_policy_says(
        mb_client: FlaskClient, microblog: Flask) -> None:
    """The parent's check is part of the INSERT: a missing parent still answers 404 before
    the policy's 401 or 403, as when the parent was read first."""
    engine = state_of(microblog).engine
    ann, bob = add_user(engine, "ann"), add_user(engine, "bob")
    headers = bearer(mb_client, "ann")
    missing = "No users item has the key '999'."
    for answer in (mb_client.post("/users/999/messages", json={"content": "Hi."}),
                   mb_client.post("/users/999/messages", json={"content": "Hi."},
                                  headers=headers),
                   mb_client.post("/users/999/messages", json=[{"content": "Hi."}] * 2,
                                  headers=headers)):
        assert answer.status_code == 404, answer.get_data(as_text=True)
        assert answer.get_json()["detail"] == missing
    assert mb_client.post("/users/x1/messages", json={"content": "Hi."},
                          headers=headers).status_code == 404
    refused = mb_client.post(f"/users/{bob}/messages", json={"content": "Hi."},
                             headers=headers)
    assert refused.status_code == 403, refused.get_data(as_text=True)
    assert refused.get_json()["detail"] == "You can post messages only as yourself."
    assert mb_client.post(f"/users/{ann}/messages",
                          json={"content": "Hi."}).status_code == 401
    assert rows(engine, "SELECT id FROM messages") == []
    posted = mb_client.post(f"/users/{ann}/messages", json={"content": "Kept."},
                            headers=headers)
    assert posted.status_code == 201, posted.get_data(as_text=True)
    item = posted.get_json()
    assert posted.headers["Location"] == f"/messages/{item['id']}"
    assert item == mb_client.get(posted.headers["Location"]).get_json()
    assert item["user_id"] == ann and item["content"] == "Kept."
    connection = engine.raw_connection()  # back in the pool as it came, on PostgreSQL too
    try:
        if engine.dialect.name == "postgresql":
            assert connection.driver_connection.autocommit is False  # type: ignore[union-attr]
    finally:
        connection.close()
    assert [row["content"] for row in rows(engine, "SELECT content FROM messages")] \
        == ["Kept."]


def test_a_create_under_a_parent_answers_the_row_as_stored(db_url: str,
                                                          engine: sa.Engine) -> None:
    """Every column type goes through the one-statement INSERT as through VALUES (on
    PostgreSQL each parameter is cast to its column's type)."""
    with serving(db_url, User, Post) as app:
        client = app.test_client()
        user = client.post("/users", json=USER).get_json()
        one = {"title": "t", "body": "b", "published": True, "rating": "4.25"}
        alone = client.post(f"/users/{user['id']}/posts", json=one)
        assert alone.status_code == 201, alone.get_json()
        batch = client.post(f"/users/{user['id']}/posts",
                            json=[{"title": "u"}, {"title": "v", "rating": 1}])
        assert batch.status_code == 201, batch.get_json()
        for item in [alone.get_json(), *batch.get_json()]:
            assert item == client.get(f"/posts/{item['id']}").get_json()
        assert alone.get_json()["published"] is True
        assert alone.get_json()["user_id"] == user["id"]
        # A database error in a batch (a title too long for PostgreSQL, a NOT NULL on
        # both): nothing of it stays.
        failed = client.post(f"/users/{user['id']}/posts",
                             json=[{"title": "w"}, {"title": None}])
        assert failed.status_code in (400, 422), failed.get_json()
    assert [row["title"] for row in rows(engine, "SELECT title FROM posts ORDER BY id")] \
        == ["t", "u", "v"]
