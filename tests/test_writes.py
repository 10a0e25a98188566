"""Writes: batches are capped and all or nothing (relation lists too), slow pure work is done
before the write lock is taken, a lock held past the busy timeout is a 503 with
``Retry-After``, preconditions on writes, and items refuse query parameters."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from conftest import rows
from factories import add_user, serving
from tablerest import PasswordHash, RequestContext, Resource
from testapp import User


def new_user(index: int) -> dict[str, Any]:
    return {"name": f"user{index}", "email": f"user{index}@example.com",
            "password": f"password-{index}"}


def test_a_batch_over_the_limit_is_413_and_writes_nothing(db_url: str,
                                                          engine: sa.Engine) -> None:
    with serving(db_url, User, TABLEREST_MAX_BATCH=3) as app:
        client = app.test_client()
        response = client.post("/users", json=[new_user(i) for i in range(4)])
        assert response.status_code == 413
        assert response.mimetype == "application/problem+json"
        assert "TABLEREST_MAX_BATCH" in response.get_json()["detail"]
        assert rows(engine, "SELECT id FROM users") == []
        response = client.post("/users", json=[new_user(i) for i in range(3)])
        assert response.status_code == 201
    assert len(rows(engine, "SELECT id FROM users")) == 3


class Recording(Resource):
    model = User
    seen: list[Any] = []

    def before_create(self, values: dict[str, Any], ctx: RequestContext) -> None:
        self.seen.append(values["password"])


def test_passwords_are_hashed_before_the_transaction(db_url: str, engine: sa.Engine) -> None:
    Recording.seen = []
    with serving(db_url, Recording) as app:
        response = app.test_client().post("/users", json=[new_user(1), new_user(2)])
        assert response.status_code == 201
    # The hooks inside the transaction already see hashes: nothing slow runs under the lock.
    assert [type(value) for value in Recording.seen] == [PasswordHash, PasswordHash]
    stored = rows(engine, "SELECT password FROM users ORDER BY id")
    assert [PasswordHash(row["password"]) == f"password-{i}"
            for i, row in enumerate(stored, 1)] == [True, True]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_write_lock_held_past_the_busy_timeout_is_503_with_retry_after(
        db_url: str, engine: sa.Engine) -> None:
    with serving(db_url, User, TABLEREST_SQLITE_BUSY_TIMEOUT=50,
                 TABLEREST_RETRY_AFTER=3) as app:
        client = app.test_client()
        holder = sa.create_engine(db_url)
        with holder.connect() as connection:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            response = client.post("/users", json=new_user(1))
            connection.exec_driver_sql("ROLLBACK")
        holder.dispose()
        assert response.status_code == 503, response.get_json()
        assert response.headers["Retry-After"] == "3"
        assert response.mimetype == "application/problem+json"
        assert rows(engine, "SELECT id FROM users") == []
        assert client.post("/users", json=new_user(1)).status_code == 201


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_row_lock_held_past_the_lock_timeout_is_503_on_postgresql(
        db_url: str, engine: sa.Engine) -> None:
    user = add_user(engine, "alice")
    locked = sa.create_engine(db_url, connect_args={"options": "-c lock_timeout=100"})
    with serving(db_url, User) as app:
        from tablerest.extension import state_of

        state_of(app).engine.dispose()
        state_of(app).engine.pool = locked.pool  # every connection has lock_timeout=100ms
        client = app.test_client()
        holder = sa.create_engine(db_url)
        with holder.begin() as connection:
            connection.execute(sa.text("SELECT * FROM users WHERE id = :id FOR UPDATE"),
                               {"id": user})
            response = client.patch(f"/users/{user}", json={"age": 41})
        holder.dispose()
        assert response.status_code == 503, response.get_json()
        assert response.headers["Retry-After"] == "1"
    locked.dispose()
    assert rows(engine, "SELECT age FROM users") == [{"age": None}]


def test_relation_lists_take_arrays_in_one_transaction(client: FlaskClient,
                                                       engine: sa.Engine) -> None:
    user = add_user(engine, "alice")
    response = client.post(f"/users/{user}/posts", json=[{"title": "one"}, {"title": "two"}])
    assert response.status_code == 201, response.get_json()
    assert "Location" not in response.headers
    assert [(item["title"], item["user_id"]) for item in response.get_json()] == [
        ("one", user), ("two", user)]
    response = client.post(f"/users/{user}/posts", json=[{"title": "three"}, {"title": 5}])
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"].startswith("[1].")
    assert rows(engine, "SELECT title, user_id FROM posts ORDER BY id") == [
        {"title": "one", "user_id": user}, {"title": "two", "user_id": user}]
    response = client.post(f"/users/{user}/posts", json=[{"title": "x", "user_id": 999}])
    assert response.status_code == 422
    assert client.post(f"/users/{user}/posts", json=[]).status_code == 400


def test_if_none_match_star_on_a_write_to_an_existing_item_is_412(
        client: FlaskClient, engine: sa.Engine) -> None:
    user = add_user(engine, "alice", age=30)
    for method in ("PATCH", "PUT", "DELETE"):
        response = client.open(f"/users/{user}", method=method, headers={"If-None-Match": "*"},
                               json={"name": "bob", "email": "bob@example.com", "age": 5,
                                     "password": "a-long-secret-1"})
        assert response.status_code == 412, (method, response.get_json())
    assert rows(engine, "SELECT name, age FROM users") == [{"name": "alice", "age": 30}]


@pytest.mark.parametrize("query", ["fields=password", "fields=id", "name=alice", "x=1"])
def test_items_refuse_query_parameters(client: FlaskClient, engine: sa.Engine,
                                       query: str) -> None:
    user = add_user(engine, "alice")
    response = client.get(f"/users/{user}?{query}")
    assert response.status_code == 400
    assert b"password" not in response.data.replace(b"fields=password", b"") or \
        "password" in query
    assert response.get_json()["detail"].startswith("This URL takes no query parameters")
    response = client.patch(f"/users/{user}?{query}", json={"age": 3})
    assert response.status_code == 400
    assert rows(engine, "SELECT age FROM users") == [{"age": None}]


def test_concurrent_batches_do_not_fail_other_writers(db_url: str, engine: sa.Engine) -> None:
    """While one request hashes a batch of passwords, others write without 500s."""
    with serving(db_url, User) as app:
        statuses: list[int] = []

        def batch() -> None:
            client = app.test_client()
            statuses.append(client.post("/users", json=[new_user(i) for i in range(8)]
                                        ).status_code)

        thread = threading.Thread(target=batch)
        thread.start()
        client = app.test_client()
        for index in range(100, 104):
            statuses.append(client.post("/users", json=new_user(index)).status_code)
        thread.join(120)
    assert statuses.count(201) == 5, statuses
    assert len(rows(engine, "SELECT id FROM users")) == 12
